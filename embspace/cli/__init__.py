"""The command line, `embspace ...` or `python -m embspace ...`: `main` builds the parser from each
command group (`tables`, `atlas`, `annotations`; shared arguments in `args`) and dispatches."""
