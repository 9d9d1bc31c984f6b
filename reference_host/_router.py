"""The data plane: reads worker frames in order, routes events and RPCs, writes to queues.

One reader loop per data channel (``_reading``) processes its frames in order. Routing is
synchronous and enqueues pre-encoded frames without blocking; only when a recipient's queue is
full does the reader wait for room (backpressure), up to the slow-consumer timeout, after which
the slow consumer is disconnected with RESOURCE_EXHAUSTED.

Frames the host generates for a connection (error responses, notices) are owed to it, never
waited for: they queue behind its bounded queue, at most one per call in flight plus the
notices of one read frame (AWP-FLOW-007). Delivering a frame to a connection goes through
``deliver`` and ``owe``, the two entry points another transport can use.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Final

import grpc

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb

from . import _wire
from ._config import HostConfig
from ._connection import DataConnection, OwedNotice, PendingCall
from ._errors import AlreadyExists
from ._logging import log
from ._metrics import Metrics
from ._outbound import Owed
from ._reading import read_frames
from ._registry import Registry
from ._rpc import REASON_DEADLINE, RpcTable
from ._subscriptions import SubscriptionTable

_logger = logging.getLogger("reference_host.router")

SPEC_VERSION: Final = "1.0"
# Frames of one Batch routed before the reader lets other tasks run.
_BATCH_SLICE: Final = 128

# A frame that could not be enqueued without waiting: (recipient, encoded frame, is an event).
Blocked = tuple[DataConnection, bytes, bool]


class OwedError:
    """An error response the host owes a caller for a request it refused at once."""

    __slots__ = ("code", "request_id", "text")

    kind: Final = "response"

    def __init__(self, request_id: str, code: int, text: str) -> None:
        self.request_id = request_id
        self.code = code
        self.text = text

    def encode(self) -> bytes:
        """Return the error response frame."""
        return _wire.error_response(self.request_id, self.code, self.text)


class Router:
    """Data channels of one host and the routing between them."""

    def __init__(
        self,
        config: HostConfig,
        metrics: Metrics,
        registry: Registry,
        subscriptions: SubscriptionTable,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._registry = registry
        self._subscriptions = subscriptions
        self._loop = asyncio.get_running_loop()
        self._rpc = RpcTable(self._loop, self._on_expired)
        self._slow_timeout_s = config.slow_consumer_timeout_ms / 1000.0
        self._default_timeout_ms = config.default_rpc_timeout_ms
        self._max_timeout_ms = config.max_rpc_timeout_ms
        self._max_calls = config.max_calls_in_flight
        # The limit the welcome announces (0 there means 1024, as the spec says).
        self._max_batch_in = config.max_batch_messages or 1024
        self._connection_ids = itertools.count(1)
        self._channel_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.connections: dict[str, DataConnection] = {}
        self.draining = False
        # Set while this host is a cluster node cut off from the shared state: its routes are
        # stale, so events its workers publish go to no worker and are counted (AWP-CLU-018).
        self.cut_off = False

    # -- connections ---------------------------------------------------------------------

    def next_connection_id(self) -> str:
        """Return a new connection id, unique within this host."""
        return f"conn-{next(self._connection_ids)}"

    @property
    def pending_rpcs(self) -> int:
        """Return the number of RPCs forwarded and not yet answered."""
        return len(self._rpc)

    def attach(self, conn: DataConnection) -> None:
        """Make ``conn`` the data channel of its client (AWP-CONN-005)."""
        if conn.client_id in self.connections:
            raise AlreadyExists(f"client {conn.client_id!r} already has an open data channel")
        self.connections[conn.client_id] = conn
        metrics = self._metrics
        metrics.connections_open += 1
        metrics.connections_total += 1
        waiters = self._channel_waiters.pop(conn.client_id, None)
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        log(
            _logger,
            logging.INFO,
            "channel.open",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
            v1=conn.v1,
            capabilities=sorted(conn.capabilities),
        )

    async def channel_for(self, client_id: str, timeout_s: float) -> DataConnection | None:
        """Return the data channel of ``client_id``, waiting up to ``timeout_s`` for it."""
        conn = self.connections.get(client_id)
        if conn is not None or timeout_s <= 0:
            return conn
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._channel_waiters.setdefault(client_id, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._channel_waiters.get(client_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._channel_waiters[client_id]
        return self.connections.get(client_id)

    def detach(self, conn: DataConnection) -> None:
        """Remove ``conn`` and everything it owns; fail RPCs waiting on it (idempotent)."""
        if conn.closed:
            return
        conn.closed = True
        if self.connections.get(conn.client_id) is conn:
            del self.connections[conn.client_id]
            self._metrics.connections_open -= 1
        types = sorted(conn.agent_types)
        self._registry.remove_connection(conn)
        removed = self._subscriptions.remove_owner(conn.client_id)
        failed = self._rpc.fail_target(conn)
        self._answer_calls(
            failed,
            pb.ERROR_CODE_TARGET_UNAVAILABLE,
            f"worker {conn.client_id!r} disconnected before answering",
        )
        self._rpc.drop_caller(conn)
        log(
            _logger,
            logging.INFO,
            "channel.closed",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
            agent_types=types,
            subscriptions_removed=removed,
            rpcs_failed=len(failed),
        )

    def terminate_slow_consumer(self, conn: DataConnection) -> None:
        """Disconnect ``conn`` with RESOURCE_EXHAUSTED because its queue stayed full."""
        if conn.closed:
            return
        self._metrics.slow_consumers_disconnected += 1
        log(
            _logger,
            logging.WARNING,
            "channel.slow_consumer",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
            queued=len(conn.outbound),
            timeout_ms=self._config.slow_consumer_timeout_ms,
        )
        conn.terminate(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow consumer")
        # Frames still queued or owed are not delivered either; closing the queue counts them
        # (AWP-FLOW-003, AWP-OBS-020).
        self._metrics.events_dropped_slow_consumer += len(conn.outbound) + conn.outbound.owed
        conn.outbound.close()
        self.detach(conn)

    # -- draining ------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Refuse new RPCs and tell v1 workers that the host is draining (AWP-ERR-010)."""
        self.draining = True
        for conn in list(self.connections.values()):
            self._notice(conn, pb.ERROR_CODE_SHUTTING_DOWN, "the host is shutting down")

    def fail_pending(self) -> int:
        """Answer every pending RPC with SHUTTING_DOWN; return how many there were."""
        failed = 0
        for conn in list(self.connections.values()):
            calls = self._rpc.fail_target(conn)
            failed += len(calls)
            self._answer_calls(
                calls,
                pb.ERROR_CODE_SHUTTING_DOWN,
                "the host shut down before the target answered",
            )
        return failed

    def _answer_calls(self, calls: Sequence[PendingCall], code: int, text: str) -> None:
        """Owe each call's caller an error response; the text object is shared by all."""
        if not calls:
            return
        self._metrics.count_rpc_error(code, len(calls))
        for call in calls:
            call.code = code
            call.text = text
            self.owe(call.caller, call)

    def close_all(self) -> None:
        """End every data channel with UNAVAILABLE after flushing what is queued."""
        for conn in list(self.connections.values()):
            conn.terminate(grpc.StatusCode.UNAVAILABLE, "the host is shutting down", flush=True)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until no RPC is pending; return True if none is."""
        return await self._rpc.wait_idle(timeout_s)

    # -- reading -------------------------------------------------------------------------

    async def read_loop(
        self, conn: DataConnection, frames: AsyncIterator[pb.OpenChannelRequest]
    ) -> None:
        """Process ``conn``'s frames in order until the worker stops sending."""
        dispatch = self._dispatch
        deliver = self._deliver_blocked

        def handle(frame: pb.OpenChannelRequest) -> Awaitable[None] | None:
            case = frame.WhichOneof("message")
            if case == "batch":
                return self._batch(conn, frame.batch.messages)
            blocked = dispatch(conn, frame, case, False)
            return None if blocked is None else deliver(blocked)

        await read_frames(
            conn,
            frames,
            handle,
            slow_timeout_s=self._slow_timeout_s,
            on_slow=lambda: self.terminate_slow_consumer(conn),
        )

    def _batch(
        self, conn: DataConnection, messages: Sequence[pb.OpenChannelRequest]
    ) -> Awaitable[None] | None:
        if not 0 < len(messages) <= self._max_batch_in:
            # Not even partly processed: a sender that broke the limit may have broken the
            # frames too; the Notice says why (AWP-BAT-005).
            self._invalid(
                conn,
                f"a Batch frame must hold 1 to {self._max_batch_in} frames, "
                f"this one holds {len(messages)}; it was skipped",
            )
            return None
        dispatch = self._dispatch
        for index, inner in enumerate(messages):
            if index == _BATCH_SLICE:
                # Let other channels in between slices of a large batch.
                return self._batch_rest(conn, messages, index, None)
            blocked = dispatch(conn, inner, inner.WhichOneof("message"), True)
            if blocked is not None:
                return self._batch_rest(conn, messages, index + 1, blocked)
        return None

    async def _batch_rest(
        self,
        conn: DataConnection,
        messages: Sequence[pb.OpenChannelRequest],
        start: int,
        blocked: list[Blocked] | None,
    ) -> None:
        """Wait for room for ``blocked`` (or yield), then route the rest of a batch."""
        if blocked is not None:
            await self._deliver_blocked(blocked)
        else:
            await asyncio.sleep(0)
        dispatch = self._dispatch
        for index in range(start, len(messages)):
            if conn.is_closed():
                return
            if (index - start) % _BATCH_SLICE == _BATCH_SLICE - 1:
                await asyncio.sleep(0)
            inner = messages[index]
            more = dispatch(conn, inner, inner.WhichOneof("message"), True)
            if more is not None:
                await self._deliver_blocked(more)

    def _dispatch(
        self, conn: DataConnection, frame: pb.OpenChannelRequest, case: str | None, nested: bool
    ) -> list[Blocked] | None:
        if case == "cloud_event":
            return self._publish(conn, frame.cloud_event)
        if case == "request":
            return self._request(conn, frame.request)
        if case == "response":
            return self._response(conn, frame.response)
        if case == "batch" and nested:
            self._invalid(conn, "a Batch frame must not contain a Batch frame")
        else:
            self._invalid(conn, "the frame has no known case set")
        return None

    def _invalid(self, conn: DataConnection, message: str) -> None:
        self._metrics.frames_invalid += 1
        self._notice(conn, pb.ERROR_CODE_INVALID_REQUEST, message)

    def _notice(
        self,
        conn: DataConnection,
        code: int,
        message: str,
        *,
        event_id: str = "",
        request_id: str = "",
    ) -> None:
        # Notices go to v1 workers only; they never wait and are never dropped: a full queue
        # holds them as owed frames (AWP-FLOW-007). Legacy workers see logs and counters only.
        if conn.v1:
            self.owe(conn, OwedNotice(code, message, event_id, request_id))

    # -- events --------------------------------------------------------------------------

    def _publish(self, conn: DataConnection, event: ce.CloudEvent) -> list[Blocked] | None:
        metrics = self._metrics
        metrics.events_received += 1
        if not event.id or not event.type or event.spec_version != SPEC_VERSION:
            metrics.frames_invalid += 1
            self._notice(
                conn,
                pb.ERROR_CODE_INVALID_REQUEST,
                'a CloudEvent needs a non-empty id and type and spec_version "1.0"',
                event_id=event.id,
            )
            return None
        if self.cut_off:
            metrics.events_dropped_cut_off += 1
            return None
        agent_types = self._subscriptions.agent_types_for(event.type)
        if not agent_types:
            return None
        lookup = self._registry.lookup
        data: bytes | None = None
        blocked: list[Blocked] | None = None
        seen: set[DataConnection] | None = None
        first: DataConnection | None = None
        for agent_type, owners in agent_types:
            target = lookup(agent_type, event.source)
            # A worker matches events against its own subscriptions only (AWP-SUB-012), so a
            # match counts only at a worker that owns it (AWP-SUB-013).
            if target is None or target.client_id not in owners:
                metrics.events_unroutable += 1
                continue
            if first is None:
                first = target
            elif target is first:
                continue
            else:
                if seen is None:
                    seen = set()
                if target in seen:
                    continue
                seen.add(target)
            if data is None:
                data = _wire.frame(_wire.TAG_CLOUD_EVENT, event.SerializeToString())
            if target.outbound.offer(data):
                # A worker on another node: that node counts the delivery when it writes it.
                if not target.relayed:
                    metrics.events_delivered += 1
            else:
                if blocked is None:
                    blocked = []
                blocked.append((target, data, True))
        return blocked

    async def _deliver_blocked(self, blocked: list[Blocked]) -> None:
        metrics = self._metrics
        timeout_s = self._slow_timeout_s
        for target, data, is_event in blocked:
            if target.closed:
                metrics.count_undelivered("event" if is_event else "response")
                if is_event:
                    metrics.events_dropped_slow_consumer += 1
                continue
            if await target.outbound.offer_wait(data, timeout_s):
                if is_event and not target.relayed:
                    metrics.events_delivered += 1
                continue
            if is_event:
                metrics.events_dropped_slow_consumer += 1
            self.terminate_slow_consumer(target)

    # -- delivery to a connection -------------------------------------------------------

    def deliver(self, conn: DataConnection, data: bytes) -> bool:
        """Queue the encoded frame ``data`` for ``conn``; False when its queue is full."""
        return conn.outbound.offer(data)

    def owe(self, conn: DataConnection, item: Owed) -> None:
        """Queue a frame the host owes ``conn`` (an error response, a notice); never waits."""
        conn.outbound.owe(item)

    # -- RPC -----------------------------------------------------------------------------

    def _reply_error(
        self, conn: DataConnection, request_id: str, code: int, text: str
    ) -> list[Blocked] | None:
        self._metrics.count_rpc_error(code)
        self.owe(conn, OwedError(request_id, code, text))
        return None

    def _request(self, conn: DataConnection, request: pb.RpcRequest) -> list[Blocked] | None:
        self._metrics.rpc_requests += 1
        request_id = request.request_id
        target_type = request.target.type
        if not request_id:
            return self._reply_error(
                conn, request_id, pb.ERROR_CODE_INVALID_REQUEST, "request_id must not be empty"
            )
        if not target_type:
            return self._reply_error(
                conn, request_id, pb.ERROR_CODE_INVALID_REQUEST, "target.type must not be empty"
            )
        if not request.HasField("payload"):
            return self._reply_error(
                conn, request_id, pb.ERROR_CODE_INVALID_REQUEST, "payload is required"
            )
        if request_id in conn.outgoing:
            return self._reply_error(
                conn,
                request_id,
                pb.ERROR_CODE_INVALID_REQUEST,
                f"request_id {request_id!r} is already in flight on this connection",
            )
        if self.draining:
            return self._reply_error(
                conn, request_id, pb.ERROR_CODE_SHUTTING_DOWN, "the host is shutting down"
            )
        if len(conn.outgoing) >= self._max_calls:
            return self._reply_error(
                conn,
                request_id,
                pb.ERROR_CODE_OVERLOADED,
                f"this connection has {self._max_calls} calls in flight, the limit its "
                "welcome announced",
            )
        target = self._registry.lookup(target_type, request.target.key)
        if target is None:
            return self._reply_error(
                conn,
                request_id,
                pb.ERROR_CODE_UNKNOWN_TARGET,
                f"no worker serves agent type {target_type!r}",
            )
        return self._forward(conn, request, target)

    def _forward(
        self, conn: DataConnection, request: pb.RpcRequest, target: DataConnection
    ) -> list[Blocked] | None:
        if target.outbound.full:
            return self._reply_error(
                conn,
                request.request_id,
                pb.ERROR_CODE_OVERLOADED,
                f"the queue of the worker serving {request.target.type!r} is full",
            )
        timeout_ms = request.timeout_ms or self._default_timeout_ms
        if self._max_timeout_ms and timeout_ms > self._max_timeout_ms:
            timeout_ms = self._max_timeout_ms  # AWP-RPC-024
        call = self._rpc.start(
            conn, request.request_id, target, timeout_ms + target.deadline_grace_ms
        )
        request.request_id = call.host_id
        request.timeout_ms = timeout_ms
        target.outbound.offer_request(
            _wire.frame(_wire.TAG_REQUEST, request.SerializeToString()), call.host_id, timeout_ms
        )
        return None

    def _response(self, conn: DataConnection, response: pb.RpcResponse) -> list[Blocked] | None:
        call = self._complete(conn, response.request_id)
        if call is None:
            return None
        response.request_id = call.caller_request_id
        return self._answer(call, _wire.frame(_wire.TAG_RESPONSE, response.SerializeToString()))

    def _complete(self, conn: DataConnection, host_id: str) -> PendingCall | None:
        """Take the call ``host_id`` that ``conn`` answers; None (and a notice) if none is
        pending or its caller is gone."""
        call = self._rpc.complete(conn, host_id)
        if call is None:
            # Not pending here: unknown, sent by the wrong connection, or forgotten after its
            # deadline or its caller's departure (AWP-RPC-005).
            reason = self._rpc.forgotten_reason(host_id, conn)
            code = pb.ERROR_CODE_INVALID_REQUEST
            if reason is None:
                self._metrics.frames_invalid += 1
                text = f"no request {host_id!r} awaits a response from this connection"
            elif reason == REASON_DEADLINE:
                self._metrics.rpc_late_responses += 1
                text = f"request {host_id!r} passed its deadline; the response was dropped"
            else:
                # Not the target's fault (AWP-RPC-025).
                self._metrics.rpc_late_responses += 1
                code = pb.ERROR_CODE_TARGET_UNAVAILABLE
                text = f"the caller of request {host_id!r} is gone; the response was dropped"
            self._notice(conn, code, text, request_id=host_id)
            return None
        self._metrics.rpc_responses += 1
        if call.caller.closed:
            self._metrics.count_undelivered("response")
            return None
        return call

    def _answer(self, call: PendingCall, data: bytes) -> list[Blocked] | None:
        """Queue the response frame ``data`` for the caller of ``call``."""
        caller = call.caller
        if caller.outbound.offer(data):
            return None
        return [(caller, data, False)]

    def _on_expired(self, call: PendingCall) -> None:
        # The text is built when the frame is encoded (PendingCall.encode), not per expiry.
        self._metrics.count_rpc_error(pb.ERROR_CODE_DEADLINE_EXCEEDED)
        call.code = pb.ERROR_CODE_DEADLINE_EXCEEDED
        self.owe(call.caller, call)

    # -- frames relayed by other nodes of a cluster (reference_host.cluster) ------------------
    # A remote node appears here as a DataConnection stand-in: the caller of a relayed request,
    # or the target of a request this node sent on. Routing stays in the methods above.

    async def relay_request(
        self, caller: DataConnection, request: pb.RpcRequest, client_id: str
    ) -> None:
        """Forward a request another node routed to the local worker ``client_id``."""
        target = self.connections.get(client_id)
        if target is None or target.closed:
            blocked = self._reply_error(
                caller,
                request.request_id,
                pb.ERROR_CODE_TARGET_UNAVAILABLE,
                f"worker {client_id!r} disconnected before the request reached it",
            )
        else:
            blocked = self._forward(caller, request, target)
        if blocked is not None:
            await self._deliver_blocked(blocked)

    def relay_call(
        self,
        caller: DataConnection,
        client_id: str,
        host_id: str,
        timeout_ms: int,
        frame: bytes,
        read_at: float,
    ) -> bool:
        """Forward the encoded request ``frame`` another node routed to the local worker
        ``client_id`` under that node's host id ``host_id``, unique in the cluster, without
        decoding it; return False when it cannot keep that id (``relay_request`` then does).
        Its deadline counts from ``read_at``, when this node read the message that carried it."""
        target = self.connections.get(client_id)
        if target is None or target.closed or host_id in target.incoming:
            return False
        if target.outbound.full:
            # The frame is decoded only here, for the type the error names.
            target_type = pb.RpcRequest.FromString(_wire.frame_payload(frame)).target.type
            self._reply_error(
                caller,
                host_id,
                pb.ERROR_CODE_OVERLOADED,
                f"the queue of the worker serving {target_type!r} is full",
            )
            return True
        if self._max_timeout_ms and timeout_ms > self._max_timeout_ms:
            timeout_ms = self._max_timeout_ms  # AWP-RPC-024
        self._rpc.start(
            caller, host_id, target, timeout_ms + target.deadline_grace_ms, host_id, read_at
        )
        target.outbound.offer(frame)
        return True

    async def relay_response(self, target: DataConnection, response: pb.RpcResponse) -> None:
        """Complete a call this node sent to ``target``, a worker on another node."""
        blocked = self._response(target, response)
        if blocked is not None:
            await self._deliver_blocked(blocked)

    def relay_answer(
        self, target: DataConnection, host_id: str, id_end: int, frame: bytes
    ) -> Awaitable[None] | None:
        """Complete a call this node sent to ``target``, a worker on another node, with the
        encoded response ``frame`` whose payload starts with ``host_id`` (field 1) and goes on
        at ``id_end``: the caller's request id takes its place, nothing else is decoded."""
        call = self._complete(target, host_id)
        if call is None:
            return None
        rest = frame[id_end:]
        caller_id = call.caller_request_id.encode()
        varint = _wire.varint
        payload = b"\x0a" + varint(len(caller_id)) + caller_id
        data = _wire.TAG_RESPONSE + varint(len(payload) + len(rest)) + payload + rest
        blocked = self._answer(call, data)
        return None if blocked is None else self._deliver_blocked(blocked)

    def set_call_id_prefix(self, prefix: str) -> None:
        """Give the host ids of calls this host forwards ``prefix`` (see ``RpcTable``)."""
        self._rpc.prefix = prefix

    def relay_event(self, client_id: str, data: bytes) -> Awaitable[None] | None:
        """Deliver an encoded event frame another node routed to the local worker; return
        what to await when its queue is full (backpressure), else None."""
        target = self.connections.get(client_id)
        if target is None or target.closed:
            self._metrics.events_unroutable += 1
        elif target.outbound.offer(data):
            self._metrics.events_delivered += 1
        else:
            return self._deliver_blocked([(target, data, True)])
        return None
