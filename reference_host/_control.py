"""The control channel: routes save/load-state requests to the worker serving an agent.

Requests ("agentid=TYPE/KEY") go to the control channel of the worker serving that agent; the
host sets respond_to to the sender. Responses ("clientid=X") reach X only if X has a pending
request with that rpc_id forwarded to the responder (AWP-CTL-003). Failures are answered with
SaveStateResponse / LoadStateResponse carrying error and error_code. Type URLs are rewritten
between the v1 and the legacy (``agents.*``) names to what each peer speaks (AWP-CTL-002).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

import grpc
from google.protobuf import any_pb2

from agentworker.v1 import agentworker_pb2 as pb

from ._config import HostConfig
from ._connection import ControlConnection, DataConnection
from ._errors import AlreadyExists
from ._logging import log
from ._metrics import Metrics
from ._outbound import OwedFrame
from ._reading import read_frames
from ._registry import Registry
from ._router import Router

_logger = logging.getLogger("reference_host.control")

V1_PACKAGE: Final = "agentworker.v1"
LEGACY_PACKAGE: Final = "agents"
_TYPE_URL_PREFIX: Final = "type.googleapis.com"
_STATE_MESSAGES: Final = frozenset(
    {"SaveStateRequest", "SaveStateResponse", "LoadStateRequest", "LoadStateResponse"}
)
_RESPONSE_FOR: Final = {
    "SaveStateRequest": "SaveStateResponse",
    "LoadStateRequest": "LoadStateResponse",
}
AGENT_DESTINATION: Final = "agentid="
SaveOrLoad = pb.SaveStateResponse | pb.LoadStateResponse
CLIENT_DESTINATION: Final = "clientid="


def state_message_name(type_url: str) -> str | None:
    """Return "SaveStateRequest" etc. for a v1 or legacy state type URL, else None."""
    full_name = type_url.rpartition("/")[2]
    package, _, name = full_name.rpartition(".")
    if package in (V1_PACKAGE, LEGACY_PACKAGE) and name in _STATE_MESSAGES:
        return name
    return None


def rewrite_type_url(message: any_pb2.Any, v1: bool) -> any_pb2.Any:
    """Return ``message`` with a state type URL renamed for a v1 or a legacy peer."""
    name = state_message_name(message.type_url)
    if name is None:
        return message
    prefix = message.type_url.rpartition("/")[0] or _TYPE_URL_PREFIX
    package = V1_PACKAGE if v1 else LEGACY_PACKAGE
    return any_pb2.Any(type_url=f"{prefix}/{package}.{name}", value=message.value)


class _Pending:
    __slots__ = ("handle", "response_name", "rpc_id", "sender", "target", "timeout_ms")

    def __init__(self, sender: str, rpc_id: str, target: str, response_name: str | None) -> None:
        self.sender = sender
        self.rpc_id = rpc_id
        self.target = target
        self.response_name = response_name
        self.handle: asyncio.TimerHandle | None = None
        self.timeout_ms = 0


class ControlRouter:
    """Control channels of one host and the routing between them."""

    def __init__(
        self, config: HostConfig, metrics: Metrics, registry: Registry, data: Router
    ) -> None:
        self._metrics = metrics
        self._registry = registry
        self._data = data
        self._default_timeout_ms = config.default_rpc_timeout_ms
        self._max_timeout_ms = config.max_rpc_timeout_ms
        self._slow_timeout_s = config.slow_consumer_timeout_ms / 1000.0
        self._max_calls = config.max_calls_in_flight
        self._loop = asyncio.get_running_loop()
        self._pending: dict[tuple[str, str], _Pending] = {}
        # Pending requests per sender, bounded like data-channel calls (AWP-FLOW-005).
        self._in_flight: dict[str, int] = {}
        self.connections: dict[str, ControlConnection] = {}
        self.draining = False
        # Set by a cluster node: forwards a request whose worker is on another node and returns
        # True, or returns False for a local worker (AWP-CLU-007).
        self.relay: Callable[
            [ControlConnection, pb.OpenControlChannelRequest, DataConnection], bool
        ] = lambda conn, frame, worker: False

    def attach(self, conn: ControlConnection) -> None:
        """Make ``conn`` the control channel of its client."""
        if conn.client_id in self.connections:
            raise AlreadyExists(f"client {conn.client_id!r} already has an open control channel")
        self.connections[conn.client_id] = conn
        log(
            _logger,
            logging.INFO,
            "control.open",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
        )

    def detach(self, conn: ControlConnection) -> None:
        """Remove ``conn``; fail requests waiting on it and forget the ones it sent."""
        if conn.closed:
            return
        conn.closed = True
        if self.connections.get(conn.client_id) is conn:
            del self.connections[conn.client_id]
        for key, pending in list(self._pending.items()):
            if pending.sender == conn.client_id:
                self._drop(key)
            elif pending.target == conn.client_id:
                self._drop(key)
                self._fail(
                    pending,
                    pb.ERROR_CODE_TARGET_UNAVAILABLE,
                    f"worker {conn.client_id!r} closed its control channel",
                )
        log(
            _logger,
            logging.INFO,
            "control.closed",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
        )

    def begin_drain(self) -> None:
        """Refuse new control requests."""
        self.draining = True

    def fail_pending(self) -> None:
        """Answer every pending control request with SHUTTING_DOWN."""
        for key, pending in list(self._pending.items()):
            self._drop(key)
            self._fail(pending, pb.ERROR_CODE_SHUTTING_DOWN, "the host is shutting down")

    def close_all(self) -> None:
        """End every control channel with UNAVAILABLE after flushing what is queued."""
        for conn in list(self.connections.values()):
            conn.terminate(grpc.StatusCode.UNAVAILABLE, "the host is shutting down", flush=True)

    def is_v1(self, client_id: str) -> bool:
        """Return True when ``client_id`` speaks v1 (its control or data channel sent a hello)."""
        control = self.connections.get(client_id)
        if control is not None and control.v1:
            return True
        data = self._data.connections.get(client_id)
        return data is not None and data.v1

    async def read_loop(
        self, conn: ControlConnection, frames: AsyncIterator[pb.OpenControlChannelRequest]
    ) -> None:
        """Process ``conn``'s control frames in order until the worker stops sending."""

        def handle(frame: pb.OpenControlChannelRequest) -> None:
            self.handle(conn, frame)

        await read_frames(
            conn,
            frames,
            handle,
            slow_timeout_s=self._slow_timeout_s,
            on_slow=lambda: self._slow(conn),
        )

    def _slow(self, conn: ControlConnection) -> None:
        """End ``conn`` with RESOURCE_EXHAUSTED: it stopped reading what the host owes it."""
        self._metrics.slow_consumers_disconnected += 1
        log(
            _logger,
            logging.WARNING,
            "control.slow_consumer",
            client_id=conn.client_id,
            connection_id=conn.connection_id,
            owed=conn.outbound.owed,
        )
        conn.terminate(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow consumer")
        conn.outbound.close()
        self.detach(conn)

    def timeout_ms(self, conn: ControlConnection) -> int:
        """Return the deadline of a control call read on ``conn``, in milliseconds: its stated
        control timeout, capped, or the host default (AWP-CTL-011)."""
        if conn.timeout_ms is None:
            return self._default_timeout_ms
        if self._max_timeout_ms:
            return min(conn.timeout_ms, self._max_timeout_ms)
        return conn.timeout_ms

    def handle(
        self,
        conn: ControlConnection,
        frame: pb.OpenControlChannelRequest,
        timeout_ms: int | None = None,
    ) -> None:
        """Route one control frame from ``conn``; a request's deadline is ``timeout_ms`` when
        given (a request relayed from another node), else ``conn``'s."""
        destination = frame.destination
        if destination.startswith(AGENT_DESTINATION):
            deadline_ms = self.timeout_ms(conn) if timeout_ms is None else timeout_ms
            self._request(conn, frame, destination[len(AGENT_DESTINATION) :], deadline_ms)
        elif destination.startswith(CLIENT_DESTINATION):
            self._response(conn, frame, destination[len(CLIENT_DESTINATION) :])
        else:
            self._metrics.control_dropped += 1
            name = state_message_name(frame.rpc_message.type_url)
            if frame.rpc_id and name in _RESPONSE_FOR:
                pending = _Pending(conn.client_id, frame.rpc_id, "", _RESPONSE_FOR[name])
                self._fail(
                    pending,
                    pb.ERROR_CODE_INVALID_REQUEST,
                    f"destination {destination!r} is neither agentid=... nor clientid=...",
                )
            else:
                log(
                    _logger,
                    logging.WARNING,
                    "control.bad_destination",
                    client_id=conn.client_id,
                    destination=destination,
                )

    def _request(
        self,
        conn: ControlConnection,
        frame: pb.OpenControlChannelRequest,
        agent: str,
        timeout_ms: int,
    ) -> None:
        self._metrics.control_requests += 1
        name = state_message_name(frame.rpc_message.type_url)
        pending = _Pending(conn.client_id, frame.rpc_id, "", _RESPONSE_FOR.get(name or ""))
        if not frame.rpc_id:
            self._metrics.control_dropped += 1
            log(_logger, logging.WARNING, "control.no_rpc_id", client_id=conn.client_id)
            return
        key = (conn.client_id, frame.rpc_id)
        if key in self._pending:
            self._fail(
                pending,
                pb.ERROR_CODE_INVALID_REQUEST,
                f"rpc_id {frame.rpc_id!r} is already in flight",
            )
            return
        if self.draining:
            self._fail(pending, pb.ERROR_CODE_SHUTTING_DOWN, "the host is shutting down")
            return
        if self._in_flight.get(conn.client_id, 0) >= self._max_calls:
            self._fail(
                pending,
                pb.ERROR_CODE_OVERLOADED,
                f"this client has {self._max_calls} control requests in flight, the limit",
            )
            return
        agent_type, _, agent_key = agent.partition("/")
        if not agent_type:
            self._fail(
                pending, pb.ERROR_CODE_INVALID_REQUEST, "the destination must be agentid=TYPE/KEY"
            )
            return
        worker = self._registry.lookup(agent_type, agent_key)
        if worker is None:
            self._fail(
                pending, pb.ERROR_CODE_UNKNOWN_TARGET, f"no worker serves agent type {agent_type!r}"
            )
            return
        if self.relay(conn, frame, worker):
            return
        target = self.connections.get(worker.client_id)
        if target is None:
            self._fail(
                pending,
                pb.ERROR_CODE_TARGET_UNAVAILABLE,
                f"worker {worker.client_id!r} has no open control channel",
            )
            return
        if target.outbound.full:
            self._fail(
                pending,
                pb.ERROR_CODE_OVERLOADED,
                f"the control queue of worker {worker.client_id!r} is full",
            )
            return
        forward = pb.OpenControlChannelResponse(
            rpc_id=frame.rpc_id,
            destination=frame.destination,
            respond_to=f"{CLIENT_DESTINATION}{conn.client_id}",
            rpc_message=rewrite_type_url(frame.rpc_message, self.is_v1(target.client_id)),
        )
        pending.target = target.client_id
        pending.timeout_ms = timeout_ms
        pending.handle = self._loop.call_at(
            self._loop.time() + timeout_ms / 1000.0, self._expire, key
        )
        self._pending[key] = pending
        self._in_flight[conn.client_id] = self._in_flight.get(conn.client_id, 0) + 1
        target.outbound.offer(forward.SerializeToString())

    def _response(
        self, conn: ControlConnection, frame: pb.OpenControlChannelRequest, client_id: str
    ) -> None:
        key = (client_id, frame.rpc_id)
        pending = self._pending.get(key)
        if pending is None or pending.target != conn.client_id:
            # Unknown, or answered already (its deadline passed): one answer per call
            # (AWP-CTL-013).
            self._metrics.control_dropped += 1
            log(
                _logger,
                logging.WARNING,
                "control.unmatched_response",
                client_id=conn.client_id,
                destination=frame.destination,
                rpc_id=frame.rpc_id,
            )
            return
        self._drop(key)
        sender = self.connections.get(client_id)
        if sender is None:
            self._metrics.control_dropped += 1
            return
        forward = pb.OpenControlChannelResponse(
            rpc_id=frame.rpc_id,
            destination=frame.destination,
            rpc_message=rewrite_type_url(frame.rpc_message, self.is_v1(client_id)),
        )
        # The answer takes the place of the sender's pending request: owed, never dropped.
        sender.outbound.owe(OwedFrame(forward.SerializeToString(), "control"))
        self._metrics.control_responses += 1

    def answer_error(
        self, sender: str, request: pb.OpenControlChannelRequest, code: int, text: str
    ) -> None:
        """Answer ``sender``'s control request with an error of the matching response type."""
        name = state_message_name(request.rpc_message.type_url)
        self._fail(_Pending(sender, request.rpc_id, "", _RESPONSE_FOR.get(name or "")), code, text)

    def _drop(self, key: tuple[str, str]) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        self._release(pending.sender)
        if pending.handle is not None:
            pending.handle.cancel()
            pending.handle = None

    def _release(self, sender: str) -> None:
        count = self._in_flight.get(sender, 0) - 1
        if count > 0:
            self._in_flight[sender] = count
        else:
            self._in_flight.pop(sender, None)

    def _expire(self, key: tuple[str, str]) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        self._release(pending.sender)
        pending.handle = None
        self._fail(
            pending,
            pb.ERROR_CODE_DEADLINE_EXCEEDED,
            f"no response within {pending.timeout_ms} ms",
        )

    def _fail(self, pending: _Pending, code: int, text: str) -> None:
        """Answer ``pending.sender`` with an error response of the matching type."""
        self._metrics.count_rpc_error(code)
        sender = self.connections.get(pending.sender)
        if sender is None:
            self._metrics.count_undelivered("control")
            return
        body: SaveOrLoad
        if pending.response_name == "SaveStateResponse":
            body = pb.SaveStateResponse(error=text, error_code=code)  # type: ignore[arg-type]
        elif pending.response_name == "LoadStateResponse":
            body = pb.LoadStateResponse(error=text, error_code=code)  # type: ignore[arg-type]
        else:
            self._metrics.control_dropped += 1
            log(
                _logger,
                logging.WARNING,
                "control.unanswerable",
                client_id=pending.sender,
                rpc_id=pending.rpc_id,
                error=text,
            )
            return
        package = V1_PACKAGE if self.is_v1(pending.sender) else LEGACY_PACKAGE
        reply = pb.OpenControlChannelResponse(
            rpc_id=pending.rpc_id,
            destination=f"{CLIENT_DESTINATION}{pending.sender}",
            rpc_message=any_pb2.Any(
                type_url=f"{_TYPE_URL_PREFIX}/{package}.{pending.response_name}",
                value=body.SerializeToString(),
            ),
        )
        sender.outbound.owe(OwedFrame(reply.SerializeToString(), "control"))
