"""Entry point for `python -m embspace`."""

import sys

from embspace.cli import main

sys.exit(main())
