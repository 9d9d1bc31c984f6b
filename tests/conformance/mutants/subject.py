"""A mutant subject process: ``python tests/conformance/mutants/subject.py host NAME HOST-ARGS``
runs the reference host, and ``... subject worker NAME`` the reference worker's conformance
agents, each with mutant NAME's patch applied first (NAME ``unmodified`` applies none)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

UNMODIFIED = "unmodified"
SCRIPT = Path(__file__).resolve()
# Run as a script (``python .../subject.py``), the repository root is not on the path.
if str(SCRIPT.parents[3]) not in sys.path:
    sys.path.insert(0, str(SCRIPT.parents[3]))


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the named mutant's patch, then run the host or worker; return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("host", "worker"):
        print("usage: subject host|worker NAME [HOST-ARGS...]", file=sys.stderr)
        return 2
    side, name, rest = args[0], args[1], args[2:]
    if side == "host":
        # The host's gRPC settings must be applied before anything loads gRPC.
        from reference_host._io_defaults import prefer_poll_io

        prefer_poll_io()
    from tests.conformance.mutants.catalogue import mutant_named

    if name != UNMODIFIED:
        mutant_named(side, name).patch()
    if side == "host":
        from reference_host._cli import main as host_main

        return host_main(rest)
    from reference_worker.conformance_agents import main as worker_main

    return worker_main()


if __name__ == "__main__":
    sys.exit(main())
