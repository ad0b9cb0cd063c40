"""``python -m aiokatcp``: the same as the ``katcpcmd`` command."""

import sys

from .tools.katcpcmd import main

if __name__ == "__main__":
    sys.exit(main())
