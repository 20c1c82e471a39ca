"""The command line, `embspace ...` or `python -m embspace ...`: `main` parses and dispatches."""
