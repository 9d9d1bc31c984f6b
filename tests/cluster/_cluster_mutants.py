"""The broken clusters of test_cluster_mutants.py: mutant name -> the requirement it breaks.
``_broken_node`` holds the patches; this module loads nothing, so a test can import it."""

from __future__ import annotations

from typing import Final

BROKEN: Final[dict[str, str]] = {
    "client-id-per-node": "AWP-CLU-005",
    "no-read-your-writes": "AWP-CLU-006",
    "calls-stay-on-their-node": "AWP-CLU-001",
}
