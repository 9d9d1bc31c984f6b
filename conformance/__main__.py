"""Entry point: `python -m conformance`."""

from __future__ import annotations

import sys

from conformance._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
