"""The broken clusters of test_cluster_mutants.py: for each cluster MUST the host suite's cases
cite, a node with that requirement broken, and the cases that must catch it. ``_broken_node``
holds the patches; this module loads nothing, so the mutation matrix's table can import it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BROKEN", "CLUSTER_MUTANTS", "ClusterMutant"]


@dataclass(frozen=True, slots=True)
class ClusterMutant:
    """A cluster of ``nodes`` nodes that all break ``requirement``; ``catches`` must fail on
    it. With ``node_fault`` the suite may kill and restart its nodes (--node-fault-command)."""

    name: str
    requirement: str
    summary: str
    catches: tuple[str, ...]
    nodes: int = 2
    node_fault: bool = False


CLUSTER_MUTANTS: Final = (
    ClusterMutant(
        "client-id-per-node",
        "AWP-CLU-005",
        "checks a client-id against its own node's channels only",
        ("host/cluster/client-id-unique",),
    ),
    ClusterMutant(
        "no-read-your-writes",
        "AWP-CLU-006",
        "returns RegisterAgent, AddSubscription and RemoveSubscription before the other nodes "
        "route by the change, which reaches them a second later",
        ("host/cluster/read-your-writes",),
    ),
    ClusterMutant(
        "calls-stay-on-their-node",
        "AWP-CLU-001",
        "answers a call for a worker on another node as if no worker served the type",
        ("host/cluster/read-your-writes",),
    ),
    ClusterMutant(
        "lost-calls-wait-for-their-deadline",
        "AWP-CLU-009",
        "leaves the calls pending at a lost node's workers to end at their deadline",
        ("host/cluster/node-loss",),
        nodes=3,
        node_fault=True,
    ),
    ClusterMutant(
        "keeps-lost-claims",
        "AWP-CLU-010",
        "keeps a lost node's client-id claims: those client-ids are refused on every node",
        ("host/cluster/node-loss",),
        nodes=3,
        node_fault=True,
    ),
    ClusterMutant(
        "drops-events-after-a-loss",
        "AWP-CLU-011",
        "from the moment it sees a node lost until a node joins, drops the events its workers "
        "publish to workers on other nodes",
        ("host/cluster/node-loss",),
        nodes=3,
        node_fault=True,
    ),
    ClusterMutant(
        "ignores-a-silent-connection",
        "AWP-CLU-017",
        "keeps serving while its lease renewals do not get through, until its connection to "
        "the shared state closes",
        ("host/cluster/cut-off",),
        node_fault=True,
    ),
    ClusterMutant(
        "no-notice-when-cut-off",
        "AWP-CLU-012",
        "stops serving when cut off from the shared state but sends its v1 workers no "
        "SHUTTING_DOWN notice",
        ("host/cluster/cut-off",),
        node_fault=True,
    ),
    ClusterMutant(
        "delivers-while-cut-off",
        "AWP-CLU-018",
        "delivers the events its workers publish while it is cut off from the shared state",
        ("host/cluster/cut-off",),
        node_fault=True,
    ),
)
# Mutant name -> the requirement it breaks.
BROKEN: Final[dict[str, str]] = {m.name: m.requirement for m in CLUSTER_MUTANTS}
