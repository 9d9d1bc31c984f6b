"""Raw test clients for the host, built directly on the generated messages and grpc.aio.

They speak the wire exactly as written here (no worker SDK), so the tests see what the host
really sends: every frame, batches included, and the gRPC status a call ends with.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import any_pb2

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb

V1_SERVICE: Final = "agentworker.v1.AgentRpcService"
LEGACY_SERVICE: Final = "agents.AgentRpc"
HELLO_KEY: Final = "agentworker-hello-bin"
WELCOME_KEY: Final = "agentworker-welcome-bin"
# Generous: tests must not flake on a loaded machine; waits end as soon as the event happens.
TIMEOUT_S: Final = 10.0

ALL_CAPABILITIES: Final = (
    pb.CAPABILITY_BATCHING,
    pb.CAPABILITY_STATE,
    pb.CAPABILITY_SHARED_AGENT_TYPES,
    pb.CAPABILITY_TRACE_CONTEXT,
)

_ids = itertools.count(1)
T = TypeVar("T")


async def retry_while(
    code: grpc.StatusCode, attempt: Callable[[], Awaitable[T]], within: float = TIMEOUT_S
) -> T:
    """Call ``attempt`` until it stops failing with ``code`` (e.g. ALREADY_EXISTS while the host
    has not yet seen an earlier channel end); give up after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await attempt()
        except (Closed, grpc.aio.AioRpcError) as exc:
            failed = exc.code if isinstance(exc, Closed) else exc.code()
            if failed != code or loop.time() >= deadline:
                raise
        await asyncio.sleep(0.05)


def hello(*capabilities: int, max_batch_messages: int = 0) -> pb.ChannelHello:
    """Return a v1 ChannelHello announcing ``capabilities``."""
    return pb.ChannelHello(
        protocol_version=1,
        capabilities=capabilities,  # type: ignore[arg-type]
        implementation="tests/raw (python)",
        max_batch_messages=max_batch_messages,
    )


def event(
    topic_type: str, source: str = "default", *, event_id: str | None = None, data: bytes = b""
) -> ce.CloudEvent:
    """Return a valid CloudEvent on topic (topic_type, source)."""
    return ce.CloudEvent(
        id=event_id if event_id is not None else f"e{next(_ids)}",
        source=source,
        spec_version="1.0",
        type=topic_type,
        attributes={
            "datacontenttype": ce.CloudEvent.CloudEventAttributeValue(ce_string="application/json"),
            "agmsgkind": ce.CloudEvent.CloudEventAttributeValue(ce_string="publish"),
        },
        binary_data=data,
    )


def type_sub(sub_id: str, topic_type: str, agent_type: str) -> pb.Subscription:
    return pb.Subscription(
        id=sub_id,
        type_subscription=pb.TypeSubscription(topic_type=topic_type, agent_type=agent_type),
    )


def prefix_sub(sub_id: str, prefix: str, agent_type: str) -> pb.Subscription:
    return pb.Subscription(
        id=sub_id,
        type_prefix_subscription=pb.TypePrefixSubscription(
            topic_type_prefix=prefix, agent_type=agent_type
        ),
    )


def payload(text: str = "ping") -> pb.Payload:
    return pb.Payload(
        data_type="Ping", data_content_type="application/json", data=f'"{text}"'.encode()
    )


async def eventually(predicate: Callable[[], bool], within: float = TIMEOUT_S) -> None:
    """Wait until ``predicate()`` holds (polling), failing after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class Api:
    """Unary calls of the service under one path (v1 or legacy)."""

    def __init__(self, channel: grpc.aio.Channel, service: str = V1_SERVICE) -> None:
        self._channel = channel
        self._service = service

    def _unary(
        self, method: str, response: type[object]
    ) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        return self._channel.unary_unary(
            f"/{self._service}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,  # type: ignore[attr-defined]
        )

    async def register(
        self, agent_type: str, metadata: Sequence[tuple[str, str]]
    ) -> pb.RegisterAgentResponse:
        call = self._unary("RegisterAgent", pb.RegisterAgentResponse)
        return await call(  # type: ignore[no-any-return]
            pb.RegisterAgentRequest(type=agent_type), metadata=metadata, timeout=TIMEOUT_S
        )

    async def add_subscription(
        self, subscription: pb.Subscription, metadata: Sequence[tuple[str, str]]
    ) -> pb.AddSubscriptionResponse:
        call = self._unary("AddSubscription", pb.AddSubscriptionResponse)
        return await call(  # type: ignore[no-any-return]
            pb.AddSubscriptionRequest(subscription=subscription),
            metadata=metadata,
            timeout=TIMEOUT_S,
        )

    async def remove_subscription(
        self, subscription_id: str, metadata: Sequence[tuple[str, str]]
    ) -> pb.RemoveSubscriptionResponse:
        call = self._unary("RemoveSubscription", pb.RemoveSubscriptionResponse)
        return await call(  # type: ignore[no-any-return]
            pb.RemoveSubscriptionRequest(id=subscription_id), metadata=metadata, timeout=TIMEOUT_S
        )

    async def get_subscriptions(
        self, metadata: Sequence[tuple[str, str]]
    ) -> pb.GetSubscriptionsResponse:
        call = self._unary("GetSubscriptions", pb.GetSubscriptionsResponse)
        return await call(  # type: ignore[no-any-return]
            pb.GetSubscriptionsRequest(), metadata=metadata, timeout=TIMEOUT_S
        )


class Closed(Exception):
    """The channel ended while a frame was awaited."""

    def __init__(self, code: grpc.StatusCode | None, details: str | None) -> None:
        super().__init__(f"channel ended: {code} {details}")
        self.code = code
        self.details = details


class RawWorker:
    """One worker connection: a data channel plus the unary API under the same client-id."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        client_id: str,
        *,
        service: str = V1_SERVICE,
        extra_metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.channel = channel
        self.client_id = client_id
        self.service = service
        self.metadata: tuple[tuple[str, str], ...] = (("client-id", client_id), *extra_metadata)
        self.api = Api(channel, service)
        self.welcome: pb.ChannelWelcome | None = None
        self.initial_metadata: dict[str, str | bytes] = {}
        self.raw_frames: list[pb.OpenChannelResponse] = []
        self._call: (
            grpc.aio.StreamStreamCall[pb.OpenChannelRequest, pb.OpenChannelResponse] | None
        ) = None
        self._incoming: asyncio.Queue[pb.OpenChannelResponse | None] = asyncio.Queue()
        self._flat: collections.deque[pb.OpenChannelResponse] = collections.deque()
        self._reader: asyncio.Task[None] | None = None
        self.end_code: grpc.StatusCode | None = None
        self.end_details: str | None = None
        self.ended = asyncio.Event()

    async def open(
        self, channel_hello: pb.ChannelHello | None = None, *, read: bool = True
    ) -> RawWorker:
        """Open the data channel (v1 when ``channel_hello`` is given) and wait for metadata."""
        metadata: list[tuple[str, str | bytes]] = list(self.metadata)
        if channel_hello is not None:
            metadata.append((HELLO_KEY, channel_hello.SerializeToString()))
        stream = self.channel.stream_stream(
            f"/{self.service}/OpenChannel",
            request_serializer=pb.OpenChannelRequest.SerializeToString,
            response_deserializer=pb.OpenChannelResponse.FromString,
        )
        self._call = stream(None, metadata=metadata)
        initial = await asyncio.wait_for(self._call.initial_metadata(), TIMEOUT_S)
        self.initial_metadata = dict(initial or ())
        raw = self.initial_metadata.get(WELCOME_KEY)
        if isinstance(raw, bytes):
            self.welcome = pb.ChannelWelcome.FromString(raw)
        if self._call.done():
            await self._record_end()
            raise Closed(self.end_code, self.end_details)
        if read:
            self.start_reading()
        return self

    def start_reading(self) -> None:
        """Start reading frames in the background (for workers opened with read=False)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._call is not None
        try:
            async for frame in self._call:
                self.raw_frames.append(frame)
                self._incoming.put_nowait(frame)
        except grpc.aio.AioRpcError:
            pass
        except asyncio.CancelledError:
            pass
        await self._record_end()
        self._incoming.put_nowait(None)

    async def _record_end(self) -> None:
        assert self._call is not None
        if self._call.done() or self._call.cancelled():
            self.end_code = await self._call.code()
            self.end_details = await self._call.details()
        self.ended.set()

    async def wait_ended(self, within: float = TIMEOUT_S) -> grpc.StatusCode | None:
        """Wait for the channel to end; return its status code."""
        await asyncio.wait_for(self.ended.wait(), within)
        return self.end_code

    async def send(self, frame: pb.OpenChannelRequest) -> None:
        assert self._call is not None
        await asyncio.wait_for(self._call.write(frame), TIMEOUT_S)

    async def publish(self, cloud_event: ce.CloudEvent) -> None:
        await self.send(pb.OpenChannelRequest(cloud_event=cloud_event))

    async def request(
        self,
        request_id: str,
        target_type: str,
        key: str = "default",
        *,
        timeout_ms: int = 0,
        body: pb.Payload | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        await self.send(
            pb.OpenChannelRequest(
                request=pb.RpcRequest(
                    request_id=request_id,
                    target=pb.AgentId(type=target_type, key=key),
                    payload=body if body is not None else payload(),
                    timeout_ms=timeout_ms,
                    metadata=metadata or {},
                )
            )
        )

    async def respond(
        self,
        request_id: str,
        body: pb.Payload | None = None,
        *,
        error: str = "",
        error_code: int = 0,
        metadata: dict[str, str] | None = None,
    ) -> None:
        await self.send(
            pb.OpenChannelRequest(
                response=pb.RpcResponse(
                    request_id=request_id,
                    payload=body,
                    error=error,
                    error_code=error_code,  # type: ignore[arg-type]
                    metadata=metadata or {},
                )
            )
        )

    async def next_raw(self, within: float = TIMEOUT_S) -> pb.OpenChannelResponse:
        """Return the next frame as received (a Batch frame stays one frame)."""
        frame = await asyncio.wait_for(self._incoming.get(), within)
        if frame is None:
            self._incoming.put_nowait(None)
            raise Closed(self.end_code, self.end_details)
        return frame

    async def next(self, within: float = TIMEOUT_S) -> pb.OpenChannelResponse:
        """Return the next frame, batches expanded into their frames in order."""
        if not self._flat:
            frame = await self.next_raw(within)
            if frame.WhichOneof("message") == "batch":
                self._flat.extend(frame.batch.messages)
            else:
                self._flat.append(frame)
        return self._flat.popleft()

    async def next_of(self, case: str, within: float = TIMEOUT_S) -> pb.OpenChannelResponse:
        """Return the next frame whose case is ``case``, skipping others (e.g. notices)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            frame = await self.next(max(0.0, deadline - loop.time()))
            if frame.WhichOneof("message") == case:
                return frame

    async def events_until(self, marker_id: str, within: float = TIMEOUT_S) -> list[ce.CloudEvent]:
        """Collect the events received before the event ``marker_id`` (which is excluded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        seen: list[ce.CloudEvent] = []
        while True:
            frame = await self.next(max(0.0, deadline - loop.time()))
            if frame.WhichOneof("message") != "cloud_event":
                continue
            if frame.cloud_event.id == marker_id:
                return seen
            seen.append(frame.cloud_event)

    async def register(self, agent_type: str) -> None:
        await self.api.register(agent_type, self.metadata)

    async def subscribe(self, subscription: pb.Subscription) -> None:
        await self.api.add_subscription(subscription, self.metadata)

    async def close(self) -> None:
        """Cancel the data channel and wait for the reader to stop."""
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=TIMEOUT_S)


class RawControl:
    """One worker's control channel."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        client_id: str,
        *,
        service: str = V1_SERVICE,
        extra_metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.client_id = client_id
        stream = channel.stream_stream(
            f"/{service}/OpenControlChannel",
            request_serializer=pb.OpenControlChannelRequest.SerializeToString,
            response_deserializer=pb.OpenControlChannelResponse.FromString,
        )
        self._call = stream(None, metadata=(("client-id", client_id), *extra_metadata))

    async def open(self) -> RawControl:
        await asyncio.wait_for(self._call.initial_metadata(), TIMEOUT_S)
        return self

    async def send(
        self,
        rpc_id: str,
        destination: str,
        message: any_pb2.Any,
        respond_to: str | None = None,
    ) -> None:
        frame = pb.OpenControlChannelRequest(
            rpc_id=rpc_id, destination=destination, rpc_message=message
        )
        if respond_to is not None:
            frame.respond_to = respond_to
        await asyncio.wait_for(self._call.write(frame), TIMEOUT_S)

    async def next(self, within: float = TIMEOUT_S) -> pb.OpenControlChannelResponse:
        frame = await asyncio.wait_for(self._call.read(), within)
        if not isinstance(frame, pb.OpenControlChannelResponse):  # grpc.aio.EOF
            raise Closed(await self._call.code(), await self._call.details())
        return frame

    def close(self) -> None:
        self._call.cancel()


def pack(message: object, package: str = "agentworker.v1") -> any_pb2.Any:
    """Pack a state message with a v1 or legacy (``agents``) type URL."""
    name = type(message).__name__
    return any_pb2.Any(
        type_url=f"type.googleapis.com/{package}.{name}",
        value=message.SerializeToString(),  # type: ignore[attr-defined]
    )
