"""Command line: ``python -m reference_host [--address HOST:PORT] ...`` (see ``_cli``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._io_defaults import prefer_poll_io


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the host's gRPC settings, then run the host CLI; return the exit code."""
    prefer_poll_io()
    # Imported only now: gRPC reads its settings when it loads, and the CLI loads it.
    from ._cli import main as run_cli

    return run_cli(argv)


if __name__ == "__main__":
    sys.exit(main())
