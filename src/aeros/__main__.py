"""``python -m aeros``: the same as the ``aeros`` command."""

from __future__ import annotations

import sys

from aeros.cli import main

if __name__ == "__main__":
    sys.exit(main())
