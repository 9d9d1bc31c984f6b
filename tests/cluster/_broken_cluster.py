"""The local cluster launcher with every node broken by one mutant (a process of its own).

``python -m tests.cluster._broken_cluster MUTANT LAUNCHER-ARGS...`` runs
``python -m reference_host.cluster.local LAUNCHER-ARGS...`` whose nodes, restarted ones
included, run ``python -m tests.cluster._broken_node MUTANT`` instead of the reference host.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from reference_host.cluster import local
from tests.cluster._cluster_mutants import BROKEN


def main(argv: Sequence[str]) -> int:
    """Patch the launcher's node command with the mutant, then run the launcher."""
    if not argv or argv[0] not in BROKEN:
        print(f"usage: _broken_cluster {'|'.join(BROKEN)} LAUNCHER-ARGS...", file=sys.stderr)
        return 2
    mutant = argv[0]
    init = local.NodeProcess.__init__

    def broken_init(self: local.NodeProcess, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        # The node command is ``python -m reference_host ARGS``: run the mutant's wrapper.
        assert self._args[1:3] == ["-m", "reference_host"]
        self._args[2:3] = ["tests.cluster._broken_node", mutant]

    local.NodeProcess.__init__ = broken_init  # type: ignore[method-assign]
    return local.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
