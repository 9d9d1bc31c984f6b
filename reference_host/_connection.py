"""Per-connection state: identity, outbound queue, close status, and the calls a connection
originated or serves.

A ``PendingCall`` lives in its caller's ``outgoing`` and its target's ``incoming`` tables while
the target has not answered; when the host must answer it instead (deadline, target gone,
shutdown), the same object becomes a frame owed to the caller and encodes its error response
only when the caller's queue has room (see ``_outbound``).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Final

import grpc

from agentworker.v1 import agentworker_pb2 as pb

from . import _wire
from ._outbound import Outbound


class DeadlineGroup(set["PendingCall"]):
    """Pending calls that expire at one moment (``when``, loop time), and the one timer that
    expires them (see reference_host._rpc)."""

    __slots__ = ("handle", "when")

    def __init__(self, when: float) -> None:
        super().__init__()
        self.when = when
        self.handle: asyncio.TimerHandle | None = None


class PendingCall:
    """One request forwarded to a target and not yet answered; later, possibly, the error
    response the host owes its caller."""

    __slots__ = (
        "caller",
        "caller_request_id",
        "code",
        "group",
        "handle",
        "host_id",
        "target",
        "text",
        "timeout_ms",
    )

    kind: Final = "response"

    def __init__(
        self,
        host_id: str,
        caller: DataConnection,
        caller_request_id: str,
        target: DataConnection,
        timeout_ms: int,
    ) -> None:
        self.host_id = host_id
        self.caller = caller
        self.caller_request_id = caller_request_id
        self.target = target
        self.timeout_ms = timeout_ms
        # Its own timer, or the group of calls it expires with (see _rpc); one of the two.
        self.handle: asyncio.TimerHandle | None = None
        self.group: DeadlineGroup | None = None
        # The error the host answers the call with, once it must (0 while pending); an empty
        # text stands for the deadline message, built only when the frame is encoded.
        self.code = 0
        self.text = ""

    def encode(self) -> bytes:
        """Return the error response frame owed to the caller."""
        text = self.text or f"no response within {self.timeout_ms} ms"
        return _wire.error_response(self.caller_request_id, self.code, text)


class OwedNotice:
    """A Notice owed to a v1 worker, encoded when its queue has room (AWP-ERR-010)."""

    __slots__ = ("code", "event_id", "message", "request_id")

    kind: Final = "notice"

    def __init__(self, code: int, message: str, event_id: str, request_id: str) -> None:
        self.code = code
        self.message = message
        self.event_id = event_id
        self.request_id = request_id

    def encode(self) -> bytes:
        """Return the Notice frame."""
        notice = pb.Notice(
            code=self.code,  # type: ignore[arg-type]
            message=self.message,
            event_id=self.event_id,
            request_id=self.request_id,
        )
        return _wire.frame(_wire.TAG_NOTICE, notice.SerializeToString())


class Channel:
    """State shared by data and control channels: identity, outbound queue, close status."""

    __slots__ = (
        "client_id",
        "close_status",
        "closed",
        "connection_id",
        "done",
        "flush_on_close",
        "outbound",
        "v1",
    )

    def __init__(self, client_id: str, connection_id: str, outbound: Outbound, *, v1: bool) -> None:
        self.client_id = client_id
        self.connection_id = connection_id
        self.outbound = outbound
        # True when the worker sent a ChannelHello (a v1 worker); False for legacy workers.
        self.v1 = v1
        # Set once the host has removed the channel from its tables.
        self.closed = False
        # Status the call ends with when the host terminates it (None: OK).
        self.close_status: tuple[grpc.StatusCode, str] | None = None
        # Whether queued frames are written before the call ends.
        self.flush_on_close = True
        # Resolved when the call should end (reader finished, writer failed, terminated).
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def is_closed(self) -> bool:
        """Return True once the host removed the channel (re-read after every await)."""
        return self.closed

    def end(self) -> None:
        """Ask the call handler to end the call."""
        if not self.done.done():
            self.done.set_result(None)

    def terminate(self, code: grpc.StatusCode, details: str, *, flush: bool = False) -> None:
        """End the call with status ``code`` and ``details``, flushing the queue if asked."""
        if self.close_status is None:
            self.close_status = (code, details)
            self.flush_on_close = flush
        self.end()


class DataConnection(Channel):
    """A worker's data channel (OpenChannel) and what the host tracks for it."""

    __slots__ = ("agent_types", "batching", "capabilities", "incoming", "outgoing", "shares_types")

    # Time a call to this connection may run past its deadline before this host expires it:
    # nonzero for stand-ins of workers on other cluster nodes, whose node enforces the deadline.
    deadline_grace_ms: ClassVar[int] = 0
    # True for stand-ins of workers on other cluster nodes: frames queued here are relayed, and
    # the worker's own node counts what it writes to the worker.
    relayed: ClassVar[bool] = False

    def __init__(
        self,
        client_id: str,
        connection_id: str,
        outbound: Outbound,
        *,
        v1: bool,
        capabilities: frozenset[int],
        batching: bool,
        shares_types: bool,
    ) -> None:
        super().__init__(client_id, connection_id, outbound, v1=v1)
        # Capabilities in force on this connection (both sides advertised them).
        self.capabilities = capabilities
        self.batching = batching
        self.shares_types = shares_types
        # Agent types this connection registered.
        self.agent_types: set[str] = set()
        # RPCs this connection sent and awaits, by the caller's request_id.
        self.outgoing: dict[str, PendingCall] = {}
        # RPCs delivered to this connection and not yet answered, by host request id.
        self.incoming: dict[str, PendingCall] = {}


class ControlConnection(Channel):
    """A worker's control channel (OpenControlChannel)."""

    __slots__ = ("timeout_ms",)

    def __init__(
        self,
        client_id: str,
        connection_id: str,
        outbound: Outbound,
        *,
        v1: bool,
        timeout_ms: int | None = None,
    ) -> None:
        super().__init__(client_id, connection_id, outbound, v1=v1)
        # The control timeout the worker stated for its control calls (AWP-CTL-010); None
        # means the host default.
        self.timeout_ms = timeout_ms
