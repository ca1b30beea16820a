"""``python -m hashembed``: the same command line as ``hashembed``."""

import sys

from hashembed.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
