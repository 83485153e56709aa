"""`make bench`: speed and accuracy of the streaming recogniser (writes BENCHMARKS.md)."""
