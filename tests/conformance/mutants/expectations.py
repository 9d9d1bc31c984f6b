"""Where the matrix knows a mutant is not caught, with the reason. An entry whose mutant is
caught after all fails the matrix test, so these lists can only shrink."""

from __future__ import annotations

__all__ = ["KNOWN_ESCAPES", "LEGACY_NOT_CAUGHT", "NO_MUTANT_YET"]

# Mutants (side:name) the suite does not catch yet.
KNOWN_ESCAPES: dict[str, str] = {
    "worker:success-without-payload": (
        "worker/rpc/ping/json decides AWP-RPC-020 on the empty error and error_code alone; "
        "the missing payload fails its AWP-CNF-003/004 and AWP-PUB-020 steps"
    ),
    "worker:own-capabilities-in-force": (
        "worker/handshake/legacy-host decides the batch sent to a host without a welcome on "
        "AWP-VER-015, AWP-VER-020 and AWP-BAT-001, not on AWP-VER-012"
    ),
    "worker:json-events-undecodable": (
        "worker/events/broadcast/json ends on its AWP-CNF-005 receipt step before a step "
        "decides AWP-PUB-022"
    ),
    "worker:nested-batches": (
        "the harness host does not read the responses inside a nested batch, so "
        "worker/batching/accepts-batches ends on its AWP-BAT-003 step; the after-case check "
        "that decides AWP-BAT-002 runs only when a case completes"
    ),
    "worker:exit-quietly-on-broken-stream": (
        "the reference worker claims CAPABILITY_RECONNECT, and worker/robustness/garbage-bytes "
        "then decides AWP-CONN-014 passed once the reconnect step is over, without checking "
        "whether the worker exited (the reconnect step fails on AWP-CONN-020 instead)"
    ),
    "worker:legacy-service-path": (
        "the harness host serves both service paths with one set of handlers and does not "
        "record which path a call used, so worker/handshake/hello cannot check it"
    ),
}

# Host mutants whose cases apply in legacy mode but check the broken behaviour on v1 runs
# only (a legacy host has no notices and no v1 error codes).
_NO_CODES = "legacy runs do not check v1 error codes (AutoGen's callers read only `error`)"
LEGACY_NOT_CAUGHT: dict[str, str] = {
    "legacy-path-only": "a legacy run uses only the legacy path, which this mutant serves",
    "no-type-url-rewrite": "in a legacy run every peer speaks the legacy type URLs",
    "out-of-set-error-code": _NO_CODES,
    "unavailable-when-full": _NO_CODES,
    "unknown-target-unavailable": _NO_CODES,
    "close-after-notice": "legacy workers get no notices, so nothing closes their channels",
}


# Cited MUSTs that have no mutant yet, per suite: requirements added with spec v1.0, the host's
# memory bound and the worker SDK's mailboxes, whose cases came after the matrix. An entry
# that gets a mutant fails the matrix test until it is removed, so this list can only shrink.
_NEW = "added with spec v1.0 and its cases; no mutant written yet"
_CLUSTER = (
    "binds the nodes of a host cluster, and the matrix starts one host process per mutant; "
    "tests/cluster/test_cluster_mutants.py runs the cluster cases against broken clusters"
)

NO_MUTANT_YET: dict[str, dict[str, str]] = {
    "host": {
        "AWP-CLU-001": _CLUSTER,
        "AWP-CLU-005": _CLUSTER,
        "AWP-CLU-006": _CLUSTER,
    },
    "worker": {
        "AWP-CONN-040": _NEW,
        "AWP-VER-020": _NEW,
        "AWP-VER-018": _NEW,
        "AWP-PUB-025": _NEW,
        "AWP-RPC-026": _NEW,
        "AWP-ERR-022": _NEW,
        "AWP-FLOW-030": _NEW,
        "AWP-FLOW-033": _NEW,
        "AWP-CTL-008": _NEW,
        "AWP-CNF-024": _NEW,
        "AWP-CNF-021": _NEW,
        "AWP-CNF-023": _NEW,
        "AWP-CNF-030": _NEW,
    },
}
