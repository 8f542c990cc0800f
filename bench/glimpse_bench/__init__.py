"""The phases and tools of `make bench` (bench/run.py is its entry point)."""
