"""Entry point for `python -m embspace`."""

import sys

from embspace.cli.main import main

sys.exit(main())
