"""The harness playing the host for the worker suite: a small gRPC server of its own (no
routing, no policy) that records everything a worker sends and lets cases write any frame,
well formed or not, on the worker's channels.

It serves the canonical service and the legacy ``agents.AgentRpc`` path with the same
handlers, and records which path each call used. Frames are read as raw bytes and decoded
here, so a frame that does not decode is counted instead of killing the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError, Message

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure
from conformance._trace import Trace
from conformance._version import HARNESS_VERSION
from conformance._wire import (
    CANONICAL_SERVICE,
    CLIENT_ID_KEY,
    HELLO_KEY,
    LEGACY_SERVICE,
    WELCOME_KEY,
    describe,
    encode,
)

__all__ = ["Call", "Connection", "HarnessHost", "Inbound"]

_MAX_BYTES = 32 * 1024 * 1024
# Capabilities the harness host can put in force (it echoes them when the worker claims them).
HOST_CAPABILITIES = frozenset(
    {
        pb.CAPABILITY_BATCHING,
        pb.CAPABILITY_STATE,
        pb.CAPABILITY_RECONNECT,
        pb.CAPABILITY_TRACE_CONTEXT,
    }
)
_CLOSE = object()


@dataclass(slots=True)
class Call:
    """One call the worker made: its method, client-id (None when absent), the full method
    path it called (`/<service>/<Method>`, AWP-CONN-001), request message (for unary calls)
    and arrival time."""

    method: str
    client_id: str | None
    path: str
    at: float
    request: Message | None = None
    authorization: str | None = None  # the `authorization` metadata, if any


@dataclass(slots=True)
class Inbound:
    """One frame a worker sent on a data or control channel (batches are unpacked)."""

    connection: Connection
    frame: Any
    at: float
    batched: bool = False


@dataclass(eq=False)
class Connection:
    """One OpenChannel (or OpenControlChannel) call of a worker."""

    number: int
    control: bool
    client_id: str | None
    hello: pb.ChannelHello | None
    hello_present: bool
    opened_at: float
    outbound: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    ended_at: float | None = None
    end_reason: str = ""
    undecodable: int = 0
    caseless: int = 0
    batches: int = 0
    bad_batches: int = 0  # empty, or holding a batch (AWP-BAT-002)

    welcomed: bool = True
    withheld: frozenset[int] = frozenset()  # capabilities the welcome leaves out

    @property
    def capabilities(self) -> frozenset[int]:
        """Return the capabilities in force (claimed by the hello and echoed by the host)."""
        if self.hello is None or not self.welcomed:
            return frozenset()
        return (frozenset(self.hello.capabilities) & HOST_CAPABILITIES) - self.withheld

    async def write(self, frame: Message | bytes) -> None:
        """Queue one frame (a message, or raw bytes sent as they are) for the worker."""
        if self.ended.is_set():
            raise CaseFailure(f"cannot write on channel #{self.number}: it ended")
        await self.outbound.put(frame)

    def close(self, status: grpc.StatusCode = grpc.StatusCode.OK) -> None:
        """End the call (the host closes the channel) with ``status``."""
        self.outbound.put_nowait((_CLOSE, status))


class HarnessHost:
    """The server, its recorded calls and frames, and waits with deadlines."""

    def __init__(
        self,
        *,
        scale: float = 1.0,
        trace: Trace | None = None,
        welcome: bool = True,
        welcome_version: int = 1,
        headers_first: bool = True,
        withhold: frozenset[int] = frozenset(),
    ) -> None:
        self.scale = scale
        # False plays a legacy host: no welcome, so no capability is ever in force.
        self.welcome = welcome
        # Another version plays a host of a later major version: a v1 worker treats it as a
        # legacy host, so no capability is in force either (AWP-VER-018).
        self.welcome_version = welcome_version
        # False (with no welcome) plays a legacy host that sends no response headers on a data
        # channel before its first frame (AWP-VER-015): gRPC then sends them with that frame.
        self.headers_first = headers_first or welcome
        # Capabilities a v1 welcome leaves out although the hello offered them (AWP-VER-012).
        self.withhold = withhold
        self.trace = trace if trace is not None else Trace()
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.calls: list[Call] = []
        self.connections: list[Connection] = []
        self.inbound: list[Inbound] = []
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()
        self._counter = 0
        # Returns why waiting is pointless (the worker process exited), else None.
        self.liveness: Callable[[], str | None] = lambda: None
        # How many coming OpenChannel calls to refuse with ALREADY_EXISTS (reconnect cases).
        self.refuse_opens = 0
        # Answers for unary calls: None means OK; a status code makes the call fail.
        self.unary_status: Callable[[str, str | None, Message], grpc.StatusCode | None] = (
            self._default_status
        )

    # -- server ----------------------------------------------------------------------------

    async def start(
        self,
        address: str = "127.0.0.1:0",
        credentials: grpc.ServerCredentials | None = None,
    ) -> str:
        """Start serving on ``address`` (with TLS when ``credentials`` are given); return
        HOST:PORT."""
        server = grpc.aio.server(
            options=(
                ("grpc.max_send_message_length", _MAX_BYTES),
                ("grpc.max_receive_message_length", _MAX_BYTES),
                ("grpc.so_reuseport", 0),
            )
        )
        for service in (CANONICAL_SERVICE, LEGACY_SERVICE):
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, self._handlers(service)),)
            )
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        self.server = server
        return f"127.0.0.1:{self.port}"

    def _handlers(self, service: str) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """Return the handlers of ``service``; each records the path its calls used."""

        # Async generator functions, which is how gRPC tells a streaming handler apart.
        async def data(requests: AsyncIterator[bytes], context: Any) -> Any:
            async for item in self._data_channel(requests, context, f"/{service}/OpenChannel"):
                yield item

        async def control(requests: AsyncIterator[bytes], context: Any) -> Any:
            path = f"/{service}/OpenControlChannel"
            async for item in self._control_channel(requests, context, path):
                yield item

        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "OpenChannel": grpc.stream_stream_rpc_method_handler(data, response_serializer=encode),
            "OpenControlChannel": grpc.stream_stream_rpc_method_handler(
                control, response_serializer=encode
            ),
        }
        for method, request_type, response_type in (
            ("RegisterAgent", pb.RegisterAgentRequest, pb.RegisterAgentResponse),
            ("AddSubscription", pb.AddSubscriptionRequest, pb.AddSubscriptionResponse),
            ("RemoveSubscription", pb.RemoveSubscriptionRequest, pb.RemoveSubscriptionResponse),
            ("GetSubscriptions", pb.GetSubscriptionsRequest, pb.GetSubscriptionsResponse),
        ):
            handlers[method] = grpc.unary_unary_rpc_method_handler(
                self._unary_handler(method, response_type, f"/{service}/{method}"),
                request_deserializer=request_type.FromString,
                response_serializer=encode,
            )
        return handlers

    async def stop(self) -> None:
        """Stop the server at once."""
        if self.server is not None:
            await self.server.stop(0)
            self.server = None

    @staticmethod
    def _default_status(method: str, client_id: str | None, request: Message) -> Any:
        if not client_id:
            return grpc.StatusCode.INVALID_ARGUMENT
        return None

    def _client_id(self, context: Any) -> str | None:
        for key, value in context.invocation_metadata() or ():
            if key == CLIENT_ID_KEY:
                return str(value)
        return None

    def _record_call(self, method: str, context: Any, request: Message | None, path: str) -> Call:
        authorization = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = str(value)
        call = Call(
            authorization=authorization,
            method=method,
            client_id=self._client_id(context),
            path=path,
            at=time.monotonic(),
            request=request,
        )
        self.calls.append(call)
        text = "" if request is None else " " + describe(request)
        self.trace.received("worker", f"{method} client-id={call.client_id!r}{text}")
        self._changed.set()
        return call

    def has_channel(self, client_id: str | None) -> bool:
        """Return whether ``client_id`` has an open data channel."""
        return any(
            not c.control and not c.ended.is_set() and c.client_id == client_id
            for c in self.connections
        )

    def _unary_handler(self, method: str, response_type: type[Message], path: str) -> Any:
        async def handle(request: Message, context: Any) -> Message:
            call = self._record_call(method, context, request, path)
            status = self.unary_status(method, call.client_id, request)
            if status is None and method != "GetSubscriptions":
                # As a host must (AWP-CONN-008): wait up to 5 s for the caller's data channel.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 5.0
                # Polling: channels open and end in several places; the wait is short and rare.
                while not self.has_channel(call.client_id) and loop.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                if not self.has_channel(call.client_id):
                    status = grpc.StatusCode.FAILED_PRECONDITION
            if status is not None:
                self.trace.sent("host", f"{method} status {status.name}")
                await context.abort(status, f"{method}: refused by the harness ({status.name})")
            return response_type()

        return handle

    def _open(self, context: Any, path: str, *, control: bool) -> Connection:
        hello: pb.ChannelHello | None = None
        present = False
        for key, value in context.invocation_metadata() or ():
            if key == HELLO_KEY and isinstance(value, bytes):
                present = True
                with contextlib.suppress(DecodeError):
                    hello = pb.ChannelHello.FromString(value)
        self._counter += 1
        conn = Connection(
            welcomed=self.welcome and self.welcome_version == 1,
            withheld=self.withhold,
            number=self._counter,
            control=control,
            client_id=self._client_id(context),
            hello=hello,
            hello_present=present,
            opened_at=time.monotonic(),
        )
        self.connections.append(conn)
        kind = "OpenControlChannel" if control else "OpenChannel"
        self._record_call(kind, context, None, path)
        if hello is not None:
            self.trace.received("worker", f"#{conn.number} hello {describe(hello)}")
        return conn

    async def _data_channel(self, requests: AsyncIterator[bytes], context: Any, path: str) -> Any:
        conn = self._open(context, path, control=False)
        if self.refuse_opens > 0:
            self.refuse_opens -= 1
            conn.ended.set()
            self.trace.sent("host", f"#{conn.number} OpenChannel refused with ALREADY_EXISTS")
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "client-id already has a channel")
        if conn.hello is not None and self.welcome:
            offered = (frozenset(conn.hello.capabilities) & HOST_CAPABILITIES) - self.withhold
            welcome = pb.ChannelWelcome(
                protocol_version=self.welcome_version,
                capabilities=cast("list[pb.Capability]", sorted(offered)),
                implementation=f"agentworker-conformance/{HARNESS_VERSION}",
                default_rpc_timeout_ms=60_000,
                max_message_bytes=_MAX_BYTES,
                connection_id=f"harness-{conn.number}",
                channel_wait_ms=5_000,
            )
            await context.send_initial_metadata(((WELCOME_KEY, welcome.SerializeToString()),))
        elif self.headers_first:
            await context.send_initial_metadata(())
        else:
            self.trace.note("host", f"#{conn.number} no response headers before the first frame")
        async for item in self._serve(conn, requests, context, pb.OpenChannelRequest):
            yield item

    async def _control_channel(
        self, requests: AsyncIterator[bytes], context: Any, path: str
    ) -> Any:
        conn = self._open(context, path, control=True)
        await context.send_initial_metadata(())
        async for item in self._serve(conn, requests, context, pb.OpenControlChannelRequest):
            yield item

    async def _serve(
        self, conn: Connection, requests: AsyncIterator[bytes], context: Any, kind: type[Message]
    ) -> AsyncIterator[Message | bytes]:
        reader = asyncio.ensure_future(self._read(conn, requests, kind))
        try:
            while True:
                getter = asyncio.ensure_future(conn.outbound.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break  # the worker half-closed or the stream failed
                item = getter.result()
                if isinstance(item, tuple) and item and item[0] is _CLOSE:
                    status = item[1]
                    self.trace.note("host", f"#{conn.number} closed by the harness ({status.name})")
                    conn.end_reason = "closed by the harness"
                    if status is not grpc.StatusCode.OK:
                        await context.abort(status, "closed by the conformance harness")
                    return
                frame = cast("Message | bytes", item)
                self.trace.sent("host", f"#{conn.number} {describe(frame, 300)}")
                yield frame
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            conn.ended_at = time.monotonic()
            conn.ended.set()
            self._changed.set()

    async def _read(
        self, conn: Connection, requests: AsyncIterator[bytes], kind: type[Message]
    ) -> None:
        try:
            async for raw in requests:
                now = time.monotonic()
                try:
                    frame = kind.FromString(raw)
                except DecodeError:
                    conn.undecodable += 1
                    self.trace.received("worker", f"#{conn.number} undecodable frame")
                    continue
                if conn.control:
                    self._add(conn, frame, now, batched=False)
                    continue
                data = cast("pb.OpenChannelRequest", frame)
                case = data.WhichOneof("message")
                if case is None:
                    conn.caseless += 1
                    self.trace.received("worker", f"#{conn.number} frame with no oneof case")
                elif case == "batch":
                    conn.batches += 1
                    self.trace.received(
                        "worker", f"#{conn.number} batch of {len(data.batch.messages)}"
                    )
                    self._unpack(conn, data, now)
                else:
                    self._add(conn, frame, now, batched=False)
            conn.end_reason = conn.end_reason or "half-closed by the worker"
        except asyncio.CancelledError:
            conn.end_reason = conn.end_reason or "cancelled"
            raise
        except Exception as exc:  # the stream broke: recorded, the channel ends
            conn.end_reason = conn.end_reason or f"stream failed: {type(exc).__name__}"

    def _unpack(self, conn: Connection, batch: pb.OpenChannelRequest, at: float) -> None:
        """Record the frames of a batch. An empty or nested batch breaks AWP-BAT-002 and is
        counted; the frames inside a nested batch are still recorded, so that the cases
        reading them go on and the check after the case decides AWP-BAT-002."""
        if not batch.batch.messages:
            conn.bad_batches += 1
        for inner in batch.batch.messages:
            case = inner.WhichOneof("message")
            if case == "batch":
                conn.bad_batches += 1
                self._unpack(conn, inner, at)
            elif case is None:
                conn.bad_batches += 1
            else:
                self._add(conn, inner, at, batched=True)

    def _add(self, conn: Connection, frame: Message, at: float, *, batched: bool) -> None:
        self.inbound.append(Inbound(conn, frame, at, batched))
        self.trace.received("worker", f"#{conn.number} {describe(frame, 300)}")
        self._changed.set()

    # -- waits -----------------------------------------------------------------------------

    def mark_all_consumed(self) -> None:
        """Forget every frame received so far (a case starts clean)."""
        self._consumed.update(range(len(self.inbound)))

    async def wait_for(self, what: str, condition: Callable[[], Any], within: float) -> Any:
        """Wait up to ``within`` seconds (scaled) until ``condition()`` returns something true;
        return it, or fail the case naming ``what``."""
        loop = asyncio.get_running_loop()
        limit = within * self.scale
        deadline = loop.time() + limit
        while True:
            self._changed.clear()
            value = condition()
            if value:
                return value
            gone = self.liveness()
            if gone:
                raise CaseFailure(f"{gone} while waiting for {what}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CaseFailure(f"no {what} within {limit:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))

    def take(self, predicate: Callable[[Inbound], bool]) -> Inbound | None:
        """Return (consuming it) the first unconsumed inbound frame matching ``predicate``."""
        for index, item in enumerate(self.inbound):
            if index not in self._consumed and predicate(item):
                self._consumed.add(index)
                return item
        return None

    async def expect(
        self, what: str, predicate: Callable[[Inbound], bool], within: float = 5.0
    ) -> Inbound:
        """Wait for (and consume) the first inbound frame matching ``predicate``."""
        found: Inbound = await self.wait_for(what, lambda: self.take(predicate), within)
        return found

    def pending(self, predicate: Callable[[Inbound], bool]) -> list[Inbound]:
        """Return (consuming them) every unconsumed inbound frame matching ``predicate``."""
        out = []
        for index, item in enumerate(self.inbound):
            if index not in self._consumed and predicate(item):
                self._consumed.add(index)
                out.append(item)
        return out
