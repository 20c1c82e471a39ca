"""Entry point for `python -m embspace` (the installed console script is `embspace`, the same `main`)."""

import sys

from embspace.cli.main import main

sys.exit(main(prog="python -m embspace"))
