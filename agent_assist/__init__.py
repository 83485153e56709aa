"""agent-assist: real-time speech-to-suggestion assistant for call centres."""

__version__ = "0.1.0"
