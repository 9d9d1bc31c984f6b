"""A cluster node with one cluster requirement broken, for the host suite to catch (a process
of its own: importing this module sets the host's gRPC settings).

``python -m tests.cluster._broken_node MUTANT HOST-ARGS...`` patches the reference host's
cluster code with mutant MUTANT, then runs ``python -m reference_host HOST-ARGS...``. The
mutations live here, on the test side; the product has no switch for them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

# gRPC reads its settings when it loads: the host's must be in place before the imports below.
from reference_host._io_defaults import prefer_poll_io

prefer_poll_io()

from agentworker.v1 import agentworker_pb2 as pb  # noqa: E402
from reference_host._connection import DataConnection, PendingCall  # noqa: E402
from reference_host._errors import AlreadyExists  # noqa: E402
from reference_host._router import Blocked, Router  # noqa: E402
from reference_host._rpc import RpcTable  # noqa: E402
from reference_host._wire import TAG_CLOUD_EVENT  # noqa: E402
from reference_host.cluster import _codec, _mirror, _node  # noqa: E402
from reference_host.cluster._link import RemoteOutbound, RemoteWorker  # noqa: E402
from tests.cluster._cluster_mutants import BROKEN  # noqa: E402

# How long the mutant of AWP-CLU-006 lets a change of the shared state wait before a node
# routes by it: far longer than a worker needs to act on a call's return.
_APPLY_DELAY_S = 1.0


def _client_id_per_node() -> None:
    """AWP-CLU-005: a node checks a client-id against its own channels only."""

    async def claim(self: _node.ClusterNode, conn: DataConnection) -> None:
        self._check_available()
        client_id = conn.client_id
        if client_id in self._router.connections or client_id in self._claims:
            raise AlreadyExists(f"client {client_id!r} already has an open data channel")
        self._claims[client_id] = (conn, 0)

    _node.ClusterNode.claim = claim  # type: ignore[method-assign]


def _no_read_your_writes() -> None:
    """AWP-CLU-006: calls return before the other nodes route by the change, which reaches
    them a moment later."""

    async def sync(self: _node.ClusterNode, revision: int) -> None:
        del self, revision

    apply = _mirror.Mirror.apply

    def late_apply(self: _mirror.Mirror, raw_key: str, value: bytes, operation: str | None) -> None:
        # Only registrations and subscriptions arrive late: membership and client-id claims
        # stay on time, so the mutant breaks read-your-writes and nothing else.
        parsed = _codec.parse_key(raw_key)
        if parsed is None or parsed[0] not in (_codec.KIND_TYPE, _codec.KIND_SUBSCRIPTION):
            apply(self, raw_key, value, operation)
            return
        asyncio.get_running_loop().call_later(
            _APPLY_DELAY_S, apply, self, raw_key, value, operation
        )

    _node.ClusterNode._sync = sync  # type: ignore[method-assign]
    _mirror.Mirror.apply = late_apply  # type: ignore[method-assign]


def _calls_stay_on_their_node() -> None:
    """AWP-CLU-001: a node answers a call for a worker on another node as if no worker served
    the type; events still cross nodes."""
    forward = Router._forward

    def local_only(
        self: Router, conn: DataConnection, request: pb.RpcRequest, target: DataConnection
    ) -> list[Blocked] | None:
        if isinstance(target, RemoteWorker):
            return self._reply_error(
                conn, request.request_id, pb.ERROR_CODE_UNKNOWN_TARGET, "not on this node"
            )
        return forward(self, conn, request, target)

    Router._forward = local_only  # type: ignore[method-assign]


def _lost_calls_wait_for_their_deadline() -> None:
    """AWP-CLU-009: when a node is lost, the calls pending at its workers are not failed; they
    end at their deadline. Its routes still leave, as the other requirements want."""
    lose = _mirror.Mirror.lose
    fail_target = RpcTable.fail_target
    losing = [False]

    def keep_calls(self: RpcTable, target: DataConnection) -> list[PendingCall]:
        if losing[0] and isinstance(target, RemoteWorker):
            return []
        return fail_target(self, target)

    def lose_keeping_calls(self: _mirror.Mirror, member: str, reason: str) -> None:
        losing[0] = True
        try:
            lose(self, member, reason)
        finally:
            losing[0] = False

    RpcTable.fail_target = keep_calls  # type: ignore[method-assign]
    _mirror.Mirror.lose = lose_keeping_calls  # type: ignore[method-assign]


def _keeps_lost_claims() -> None:
    """AWP-CLU-010: the client-ids a lost node's workers held stay claimed: every node refuses
    a channel for them. Registrations and subscriptions still leave."""
    lose = _mirror.Mirror.lose
    claim = _node.ClusterNode.claim
    kept: set[str] = set()

    def lose_keeping_claims(self: _mirror.Mirror, member: str, reason: str) -> None:
        kept.update(client for client, holder in self.clients.items() if holder == member)
        lose(self, member, reason)

    async def refuse_kept(self: _node.ClusterNode, conn: DataConnection) -> None:
        if conn.client_id in kept:
            raise AlreadyExists(f"client {conn.client_id!r} already has an open data channel")
        await claim(self, conn)

    _mirror.Mirror.lose = lose_keeping_claims  # type: ignore[method-assign]
    _node.ClusterNode.claim = refuse_kept  # type: ignore[method-assign]


def _drops_events_after_a_loss() -> None:
    """AWP-CLU-011: from the moment a node sees another lost until a node joins, it drops the
    events its workers publish to workers on other nodes (it reports them queued)."""
    lose, renew = _mirror.Mirror.lose, _mirror.Mirror._renew
    offer = RemoteOutbound.offer
    dropping = [False]

    def lose_and_drop(self: _mirror.Mirror, member: str, reason: str) -> None:
        dropping[0] = True
        lose(self, member, reason)

    def renew_and_stop_dropping(self: _mirror.Mirror, member: str, value: bytes) -> None:
        joins = member != self.member and member not in self.links
        renew(self, member, value)
        if joins and member in self.links:
            dropping[0] = False

    def drop_events(self: RemoteOutbound, frame: bytes) -> bool:
        if dropping[0] and frame[:1] == TAG_CLOUD_EVENT:
            return True
        return offer(self, frame)

    _mirror.Mirror.lose = lose_and_drop  # type: ignore[method-assign]
    _mirror.Mirror._renew = renew_and_stop_dropping  # type: ignore[method-assign]
    RemoteOutbound.offer = drop_events  # type: ignore[method-assign]


def _ignores_a_silent_connection() -> None:
    """AWP-CLU-017: a node does not stop serving when its lease renewals stop getting through;
    it stops only when its connection to NATS closes."""

    def keep_serving(self: _node.ClusterNode) -> None:
        del self

    _node.ClusterNode._lease_lapsed = keep_serving  # type: ignore[method-assign]


def _no_notice_when_cut_off() -> None:
    """AWP-CLU-012: a node that stops serving because it lost the shared state refuses work
    and reports NOT_SERVING, but tells its v1 workers nothing."""
    stop_serving, begin_drain = _node.ClusterNode._stop_serving, Router.begin_drain
    stopping = [False]

    def drain_quietly(self: Router) -> None:
        if stopping[0]:
            self.draining = True
            return
        begin_drain(self)

    def stop_serving_quietly(self: _node.ClusterNode) -> None:
        stopping[0] = True
        try:
            stop_serving(self)
        finally:
            stopping[0] = False

    Router.begin_drain = drain_quietly  # type: ignore[method-assign]
    _node.ClusterNode._stop_serving = stop_serving_quietly  # type: ignore[method-assign]


def _delivers_while_cut_off() -> None:
    """AWP-CLU-018: a node cut off from the shared state still routes what its workers
    publish, from its stale tables."""
    stop_serving = _node.ClusterNode._stop_serving

    def stop_serving_but_route_events(self: _node.ClusterNode) -> None:
        stop_serving(self)
        self._router.cut_off = False

    _node.ClusterNode._stop_serving = stop_serving_but_route_events  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "client-id-per-node": _client_id_per_node,
    "no-read-your-writes": _no_read_your_writes,
    "calls-stay-on-their-node": _calls_stay_on_their_node,
    "lost-calls-wait-for-their-deadline": _lost_calls_wait_for_their_deadline,
    "keeps-lost-claims": _keeps_lost_claims,
    "drops-events-after-a-loss": _drops_events_after_a_loss,
    "ignores-a-silent-connection": _ignores_a_silent_connection,
    "no-notice-when-cut-off": _no_notice_when_cut_off,
    "delivers-while-cut-off": _delivers_while_cut_off,
}
assert PATCHES.keys() == BROKEN.keys()


def main() -> int:
    """Apply the mutant named by the first argument, then run the host."""
    if len(sys.argv) < 2 or sys.argv[1] not in PATCHES:
        print(f"usage: _broken_node {'|'.join(PATCHES)} HOST-ARGS...", file=sys.stderr)
        return 2
    PATCHES[sys.argv[1]]()
    from reference_host._cli import main as run_cli

    return run_cli(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
