"""Load clients: raw grpc.aio workers speaking the data channel with pre-encoded frames.

A ``Worker`` is one worker connection: its own gRPC channel (and so its own TCP connection),
``client-id`` metadata on every call, and a data channel opened on either

* the legacy path ``/agents.AgentRpc/OpenChannel`` with no hello (what AutoGen's workers do;
  served by AutoGen's host, by our reference host and by the bench relay), or
* the canonical path ``/agentworker.v1.AgentRpcService/OpenChannel`` with the v1 hello
  ``agentworker-hello-bin`` announcing ``CAPABILITY_BATCHING``. When the host's welcome grants
  batching, the worker sends every group of frames that is ready at the same moment as one
  ``Batch`` frame, and accepts ``Batch`` frames from the host.

The roles built on it (``RpcLoad``: a caller keeping N requests in flight against a responder;
``PublishLoad``: a publisher and subscribers) count everything they send and receive, so a run
can check that every message was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Final

import grpc

from agentworker.v1 import agentworker_pb2 as pb

from . import wire

LEGACY_SERVICE: Final = "/agents.AgentRpc/"
V1_SERVICE: Final = "/agentworker.v1.AgentRpcService/"
HELLO_KEY: Final = "agentworker-hello-bin"
WELCOME_KEY: Final = "agentworker-welcome-bin"
DEFAULT_MAX_BATCH: Final = 1024
# The batch size the workers announce in their hello (the frames they accept per Batch).
WORKER_MAX_BATCH: Final = 1024
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
CALL_TIMEOUT_S: Final = 10.0
# Upper bound of frames any read loop handles before it stops (a safety net; never reached).
MAX_FRAMES: Final = 50_000_000

MODE_LEGACY: Final = "legacy"
MODE_BATCHED: Final = "batched"

_parse = pb.OpenChannelResponse.FromString


class ChannelClosedError(Exception):
    """The data channel ended while the load still expected frames."""


class Worker:
    """One worker connection to a host."""

    def __init__(self, address: str, client_id: str, mode: str) -> None:
        if mode not in (MODE_LEGACY, MODE_BATCHED):
            raise ValueError(f"unknown client mode {mode!r}")
        self.address = address
        self.client_id = client_id
        self.mode = mode
        self.batching = False
        self.max_batch = 1
        self.frames_sent = 0
        self.frames_received = 0
        self.batches_sent = 0
        self.batches_received = 0
        self._service = V1_SERVICE if mode == MODE_BATCHED else LEGACY_SERVICE
        self._metadata: tuple[tuple[str, str | bytes], ...] = (("client-id", client_id),)
        self._channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall[bytes, bytes] | None = None

    async def open(self) -> None:
        """Open the gRPC channel and the data channel (and read the welcome, in v1 mode)."""
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[
                # A channel of its own per worker, so each worker is its own connection.
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        await asyncio.wait_for(self._channel.channel_ready(), CALL_TIMEOUT_S)
        metadata = self._metadata
        if self.mode == MODE_BATCHED:
            hello = pb.ChannelHello(
                protocol_version=1,
                capabilities=[pb.CAPABILITY_BATCHING],
                implementation="agentworker-bench",
                max_batch_messages=WORKER_MAX_BATCH,
            )
            metadata = (*metadata, (HELLO_KEY, hello.SerializeToString()))
        method = self._channel.stream_stream(
            self._service + "OpenChannel", request_serializer=None, response_deserializer=None
        )
        self._call = method(None, metadata=metadata)
        if self.mode == MODE_BATCHED:
            initial = await asyncio.wait_for(self._call.initial_metadata(), CALL_TIMEOUT_S)
            for key, value in initial or ():
                if key == WELCOME_KEY and isinstance(value, bytes):
                    welcome = pb.ChannelWelcome.FromString(value)
                    if pb.CAPABILITY_BATCHING in welcome.capabilities:
                        self.batching = True
                        self.max_batch = min(
                            welcome.max_batch_messages or DEFAULT_MAX_BATCH, WORKER_MAX_BATCH
                        )

    async def _unary(self, method: str, request: bytes) -> None:
        assert self._channel is not None
        call = self._channel.unary_unary(
            self._service + method, request_serializer=None, response_deserializer=None
        )
        await call(request, metadata=self._metadata, timeout=CALL_TIMEOUT_S)

    async def register(self, agent_type: str) -> None:
        """Register ``agent_type`` for this worker."""
        await self._unary(
            "RegisterAgent", pb.RegisterAgentRequest(type=agent_type).SerializeToString()
        )

    async def subscribe(self, subscription_id: str, topic_type: str, agent_type: str) -> None:
        """Subscribe ``agent_type`` to the exact topic type ``topic_type``."""
        request = pb.AddSubscriptionRequest(
            subscription=pb.Subscription(
                id=subscription_id,
                type_subscription=pb.TypeSubscription(topic_type=topic_type, agent_type=agent_type),
            )
        )
        await self._unary("AddSubscription", request.SerializeToString())

    async def send(self, frames: Sequence[bytes]) -> None:
        """Send ``frames`` in order: one Batch frame when batching is in force, else one by one."""
        call = self._call
        assert call is not None
        count = len(frames)
        if count == 0:
            return
        self.frames_sent += count
        if self.batching and count > 1:
            step = self.max_batch
            for start in range(0, count, step):
                chunk = frames[start : start + step]
                if len(chunk) == 1:
                    await call.write(chunk[0])
                else:
                    self.batches_sent += 1
                    await call.write(wire.batch(chunk))
            return
        for frame in frames:
            await call.write(frame)

    async def send_raw(self, data: bytes) -> None:
        """Write ``data`` as one frame, as is (it need not decode)."""
        assert self._call is not None
        await self._call.write(data)

    async def end_code(self) -> grpc.StatusCode:
        """Wait until the data channel ends; return its status code."""
        assert self._call is not None
        return await self._call.code()

    async def end_details(self) -> str:
        """Wait until the data channel ends; return its status details."""
        assert self._call is not None
        return str(await self._call.details())

    async def read_raw(self) -> bytes | None:
        """Return the next frame's bytes, or None when the channel ended."""
        call = self._call
        assert call is not None
        data = await call.read()
        # grpc.aio.EOF (a sentinel, not bytes) when the host ended the stream.
        return data if isinstance(data, bytes) else None

    async def read(self) -> list[pb.OpenChannelResponse] | None:
        """Return the next frame, unpacked when it is a Batch; None when the channel ended."""
        data = await self.read_raw()
        if data is None:
            return None
        frame = _parse(data)
        if data[:1] == wire.TAG_BATCH:
            self.batches_received += 1
            inner = list(frame.batch.messages)
            self.frames_received += len(inner)
            return inner
        self.frames_received += 1
        return [frame]

    async def close(self) -> None:
        """Half-close the data channel, then close the gRPC channel."""
        call = self._call
        if call is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.done_writing(), 1.0)
            call.cancel()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._channel.close(grace=0.2), 2.0)


class Phase:
    """Shared timing flags of one measurement: warm-up, measuring window, stopping."""

    __slots__ = ("last_progress", "max_gap_s", "measuring", "stopping")

    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False
        # Longest time without progress (a response or an event received) inside the window:
        # shows stalls that a rate alone hides.
        self.max_gap_s = 0.0
        self.last_progress = 0.0

    def progress(self, now: float) -> None:
        """Record that the load made progress at ``now`` (perf_counter) inside the window."""
        gap = now - self.last_progress
        if gap > self.max_gap_s:
            self.max_gap_s = gap
        self.last_progress = now


# -- RPC ---------------------------------------------------------------------------------------


class RpcLoad:
    """A caller keeping ``concurrency`` requests in flight to a responder that answers at once.

    Every request id is unique (AutoGen's host correlates by request id alone). Latency is
    measured by the caller from writing a request to reading its response.
    """

    def __init__(
        self,
        caller: Worker,
        responder: Worker,
        target_type: str,
        concurrency: int,
        payload_size: int,
        phase: Phase,
        max_requests: int,
    ) -> None:
        self.caller = caller
        self.responder = responder
        self.concurrency = concurrency
        self.phase = phase
        self.max_requests = max_requests
        self._requests = wire.RequestEncoder(target_type, "k", payload_size)
        self._responses = wire.ResponseEncoder(payload_size)
        self._ids = itertools.count(1)
        self.pending: dict[str, float] = {}
        self.sent = 0
        self.received = 0
        self.errors = 0
        self.stray = 0
        self.answered = 0
        self.window_count = 0
        self.latencies: list[float] = []
        self._drained = asyncio.Event()

    def _next(self, now: float) -> bytes:
        request_id = f"r{next(self._ids)}"
        self.pending[request_id] = now
        self.sent += 1
        return self._requests.frame(request_id)

    async def probe(self, attempts: int, wait_s: float) -> bool:
        """Round-trip probe requests until one is answered; True when the path works.

        Run with the responder's loop already running and before ``run_caller``.
        """
        for attempt in range(attempts):
            request_id = f"probe{attempt}"
            await self.caller.send([self._requests.frame(request_id)])
            deadline = time.monotonic() + wait_s
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    frames = await asyncio.wait_for(self.caller.read(), remaining)
                except TimeoutError:
                    break
                if frames is None:
                    raise ChannelClosedError("the caller's data channel ended during the probe")
                for frame in frames:
                    if frame.WhichOneof("message") == "response" and (
                        frame.response.request_id == request_id
                    ):
                        if frame.response.error:
                            break
                        return True
        return False

    async def run_responder(self) -> None:
        """Answer every request the responder receives, until its channel ends."""
        responder = self.responder
        encode = self._responses.frame
        for _ in range(MAX_FRAMES):
            frames = await responder.read()
            if frames is None:
                return
            out = [
                encode(frame.request.request_id)
                for frame in frames
                if frame.WhichOneof("message") == "request"
            ]
            self.answered += len(out)
            await responder.send(out)

    async def run_caller(self) -> None:
        """Keep ``concurrency`` requests in flight until stopping, then wait for the rest."""
        caller = self.caller
        phase = self.phase
        pending = self.pending
        latencies = self.latencies
        now = time.perf_counter()
        await caller.send(
            [self._next(now) for _ in range(min(self.concurrency, self.max_requests))]
        )
        for _ in range(MAX_FRAMES):
            frames = await caller.read()
            if frames is None:
                raise ChannelClosedError("the caller's data channel ended")
            now = time.perf_counter()
            measuring = phase.measuring
            if measuring:
                phase.progress(now)
            more = not phase.stopping
            out: list[bytes] = []
            for frame in frames:
                if frame.WhichOneof("message") != "response":
                    self.stray += 1
                    continue
                response = frame.response
                started = pending.pop(response.request_id, None)
                if started is None:
                    self.stray += 1
                    continue
                self.received += 1
                if response.error:
                    self.errors += 1
                if measuring:
                    self.window_count += 1
                    latencies.append(now - started)
                if more and self.sent < self.max_requests:
                    out.append(self._next(now))
            if out:
                await caller.send(out)
            if not pending and (phase.stopping or self.sent >= self.max_requests):
                return


# -- publish -----------------------------------------------------------------------------------


class PublishLoad:
    """A publisher and subscriber workers; at most ``window`` events not yet fully delivered.

    The window bounds what any host has to buffer, so that a host without flow control (AutoGen
    queues without limit) is measured at its delivery rate rather than at how fast it can
    accept events. The publisher writes whatever the window allows at once: one event per
    frame for legacy clients, one Batch frame of up to the welcome's limit when batching.
    """

    def __init__(
        self,
        publisher: Worker,
        subscribers: Sequence[Worker],
        topic_type: str,
        payload_size: int,
        window: int,
        phase: Phase,
        max_events: int,
    ) -> None:
        self.publisher = publisher
        self.subscribers = list(subscribers)
        self.phase = phase
        self.window = window
        self.max_events = max_events
        self._events = wire.EventEncoder(topic_type, "bench", payload_size)
        self._ids = itertools.count(1)
        self._fanout = len(self.subscribers)
        self.published = 0
        self.delivered = 0
        self.per_subscriber = [0] * self._fanout
        self.window_count = 0
        self.other_frames = 0
        self._room = asyncio.Event()
        self._waiting = False
        self._all_delivered = asyncio.Event()

    def reset(self) -> None:
        """Forget the probe events (call when none is in flight)."""
        self.published = 0
        self.delivered = 0
        self.per_subscriber = [0] * self._fanout
        self.window_count = 0

    def _outstanding_events(self) -> float:
        return self.published - self.delivered / self._fanout

    async def probe(self, attempts: int, wait_s: float) -> bool:
        """Publish probe events until every subscriber received the latest one."""
        for _attempt in range(attempts):
            before = list(self.per_subscriber)
            self.published += 1
            await self.publisher.send([self._events.frame(f"probe{self.published}")])
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if all(now > then for now, then in zip(self.per_subscriber, before, strict=True)):
                    # Events from one publisher arrive in order: nothing older is in flight.
                    return True
                await asyncio.sleep(0.005)
        return False

    async def run_subscriber(self, index: int) -> None:
        """Count the events subscriber ``index`` receives, until its channel ends."""
        subscriber = self.subscribers[index]
        phase = self.phase
        low_water = self.window / 2
        for _ in range(MAX_FRAMES):
            data = await subscriber.read_raw()
            if data is None:
                return
            tag = data[:1]
            if tag == wire.TAG_CLOUD_EVENT:
                count = 1
                subscriber.frames_received += 1
            elif tag == wire.TAG_BATCH:
                frames = _parse(data).batch.messages
                count = sum(1 for frame in frames if frame.WhichOneof("message") == "cloud_event")
                self.other_frames += len(frames) - count
                subscriber.frames_received += len(frames)
                subscriber.batches_received += 1
            else:
                self.other_frames += 1
                subscriber.frames_received += 1
                continue
            self.per_subscriber[index] += count
            self.delivered += count
            if phase.measuring:
                self.window_count += count
                phase.progress(time.perf_counter())
            if self._waiting and self._outstanding_events() <= low_water:
                self._waiting = False
                self._room.set()
            if phase.stopping and self.delivered >= self.published * self._fanout:
                self._all_delivered.set()

    async def run_publisher(self) -> None:
        """Publish within the window until stopping."""
        publisher = self.publisher
        phase = self.phase
        encode = self._events.frame
        ids = self._ids
        limit = publisher.max_batch if publisher.batching else 1
        for _ in range(MAX_FRAMES):
            if phase.stopping or self.published >= self.max_events:
                return
            room = int(self.window - self._outstanding_events())
            if room <= 0:
                self._room.clear()
                self._waiting = True
                await self._room.wait()
                continue
            count = min(room, limit, self.max_events - self.published)
            frames = [encode(f"e{next(ids)}") for _ in range(count)]
            self.published += count
            await publisher.send(frames)

    async def wait_delivered(self, timeout_s: float) -> bool:
        """After stopping, wait until every published event reached every subscriber."""
        if self.delivered >= self.published * self._fanout:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_delivered.wait(), timeout_s)
        return self.delivered >= self.published * self._fanout
