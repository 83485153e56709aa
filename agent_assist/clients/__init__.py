"""Call sources that speak the wire protocol: replay of files, analysis, the microphone."""
