"""One module per pipeline phase: a pure function that does the work, and main() for I/O."""
