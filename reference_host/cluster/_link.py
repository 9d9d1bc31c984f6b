"""Links to other nodes: a bounded queue of frames per peer and one writer that batches them.

The writer takes everything queued when it wakes and publishes it as few NATS messages as the
server's payload limit allows: no timers, so a lone frame leaves at once and a burst shares
messages, as a data channel batches (spec 12.2, AWP-CLU-015).

The router hands an event to each target in turn, the same encoded bytes each time; when the
previous frame queued on the link is that very event, the link adds the client to its entry
instead of queueing another copy, so an event crosses to a node once however many of its
workers receive it, and the node delivers it to each of them (AWP-CLU-025).

Core NATS does not push back on a publisher, so links carry their own flow control: messages are
numbered, the peer acknowledges the highest number it has processed (in its own messages to
this node, or alone when it has none to send), and the writer keeps at most ``window`` bytes
unacknowledged. A slow worker at the peer thus fills this node's link, and
the router's backpressure reaches the publishing workers as on one host (AWP-CLU-001).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import ClassVar, Final

from reference_host import _wire
from reference_host._connection import ControlConnection, DataConnection
from reference_host._logging import log
from reference_host._metrics import Metrics
from reference_host._outbound import Outbound, Owed

from . import _codec

_logger = logging.getLogger("reference_host.cluster")

Publish = Callable[[str, bytes], Awaitable[None]]
# Returns the number to acknowledge to the peer in a message about to go there.
Acknowledgement = Callable[[], int]

# Room a message keeps for its sender header.
_HEADER_ROOM: Final = 128
_EVENT: Final = _wire.TAG_CLOUD_EVENT[0]
# Loop rounds the writer waits at most, while frames keep coming, before it publishes.
_GATHER_ROUNDS: Final = 8


class Link:
    """Frames waiting to go to one peer node, in the order they were routed."""

    __slots__ = (
        "_ack_out",
        "_acked",
        "_bytes",
        "_closed",
        "_in_flight",
        "_limit_bytes",
        "_max_payload",
        "_metrics",
        "_progress",
        "_publish",
        "_queue",
        "_sender",
        "_seq",
        "_space",
        "_unacked",
        "_wakeup",
        "_window",
        "member",
        "subject",
    )

    def __init__(
        self,
        member: str,
        subject: str,
        sender: str,
        publish: Publish,
        metrics: Metrics,
        *,
        acknowledgement: Acknowledgement,
        max_payload: int,
        limit_bytes: int,
        window: int,
    ) -> None:
        self.member = member
        self.subject = subject
        self._sender = sender.encode()
        self._publish = publish
        self._ack_out = acknowledgement
        self._metrics = metrics
        self._max_payload = max(4096, max_payload - _HEADER_ROOM)
        self._limit_bytes = limit_bytes
        # Entries (clients, frame) in routing order; the last one may still gain clients.
        self._queue: collections.deque[tuple[list[bytes], bytes]] = collections.deque()
        self._bytes = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._closed = False
        self._window = window
        self._seq = 0
        # (number, bytes) of messages published and not acknowledged, oldest first.
        self._unacked: collections.deque[tuple[int, int]] = collections.deque()
        self._in_flight = 0
        self._acked: asyncio.Future[None] | None = None
        self._progress = 0.0

    def ack(self, seq: int) -> None:
        """The peer has processed every message up to number ``seq``."""
        unacked = self._unacked
        while unacked and unacked[0][0] <= seq:
            self._in_flight -= unacked.popleft()[1]
        self._progress = asyncio.get_running_loop().time()
        acked = self._acked
        if acked is not None and not acked.done():
            acked.set_result(None)

    async def _wait_window(self, stall_s: float) -> None:
        loop = asyncio.get_running_loop()
        while self._in_flight >= self._window and not self._closed:
            self._acked = loop.create_future()
            try:
                await asyncio.wait_for(self._acked, stall_s)
            except TimeoutError:
                if loop.time() - self._progress >= stall_s:
                    # Messages lost on the way (NATS is at most once): do not wait forever.
                    log(
                        _logger,
                        logging.WARNING,
                        "cluster.link_stalled",
                        peer=self.member,
                        unacknowledged=len(self._unacked),
                    )
                    self._unacked.clear()
                    self._in_flight = 0
            finally:
                self._acked = None

    @property
    def busy(self) -> bool:
        """Return True when frames are queued: a message will go to the peer soon."""
        return bool(self._queue)

    @property
    def full(self) -> bool:
        """Return True when the queue holds its limit of bytes."""
        return self._bytes >= self._limit_bytes and not self._closed

    def put(self, client: bytes, frame: bytes, *, force: bool = False) -> bool:
        """Queue ``frame`` for ``client`` at the peer; return False when the queue is full.

        ``force`` queues it even past the limit: for frames the host owes (error responses),
        which are bounded by the calls in flight and must not be dropped (AWP-FLOW-007).
        """
        if self._closed:
            return True
        queue = self._queue
        if queue:
            last = queue[-1]
            if last[1] is frame and frame[0] == _EVENT and client not in last[0]:
                # The same event for another worker on that node: one copy crosses.
                last[0].append(client)
                self._bytes += len(client) + 2
                return True
        if self._bytes >= self._limit_bytes and not force:
            return False
        # What the entry takes in a message (see _codec): header, client, frame.
        size = len(frame) + len(client) + 8
        if size > self._max_payload or len(client) > _codec.MAX_CLIENT_BYTES:
            # NATS cannot carry it: say so instead of dropping it silently.
            self._metrics.frames_invalid += 1
            log(
                _logger,
                logging.ERROR,
                "cluster.frame_too_large",
                peer=self.member,
                client_id=client.decode(errors="replace"),
                size=len(frame),
                max_payload=self._max_payload,
            )
            return True
        queue.append(([client], frame))
        self._bytes += size
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)
        return True

    async def wait_room(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until the queue has room; return False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.full:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._space is None or self._space.done():
                self._space = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._space), remaining)
            except TimeoutError:
                return not self.full
        return True

    def close(self) -> None:
        """Discard what is queued and stop the writer."""
        self._closed = True
        self._queue.clear()
        self._bytes = 0
        for future in (self._wakeup, self._space):
            if future is not None and not future.done():
                future.set_result(None)

    def _take(self, max_payload: int) -> list[tuple[list[bytes], bytes]]:
        """Take the entries of one message of at most ``max_payload`` bytes from the queue."""
        queue = self._queue
        entries: list[tuple[list[bytes], bytes]] = []
        size = 0
        while queue:
            entry = queue[0]
            clients, frame = entry
            added = len(frame) + 6 + sum(len(client) + 2 for client in clients)
            if entries and size + added > max_payload:
                break
            if added > max_payload and len(clients) > 1:
                # Too many clients for one message: split the entry.
                half = len(clients) // 2
                queue[0] = (clients[half:], frame)
                queue.appendleft((clients[:half], frame))
                self._bytes += len(frame) + 6
                continue
            queue.popleft()
            entries.append(entry)
            size += added
        self._bytes = max(0, self._bytes - size)
        return entries

    async def run(self, stall_s: float) -> None:
        """Publish queued frames until closed; ``stall_s``: see ``_wait_window``."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        while not self._closed:
            if self._in_flight >= self._window:
                await self._wait_window(stall_s)
                continue
            if not queue:
                wakeup: asyncio.Future[None] = loop.create_future()
                self._wakeup = wakeup
                try:
                    await wakeup
                finally:
                    self._wakeup = None
                # Let the tasks that are ready now queue their frames too, as long as each
                # round adds some: a burst leaves as one message, a lone frame one loop round
                # later; no timer (AWP-CLU-015).
                for _ in range(_GATHER_ROUNDS):
                    queued = len(queue)
                    await asyncio.sleep(0)
                    if len(queue) == queued or self._bytes >= self._max_payload:
                        break
                continue
            max_payload = self._max_payload
            entries: list[tuple[list[bytes], bytes]]
            if self._bytes <= max_payload:
                # Everything queued fits in one message (the usual case).
                entries = list(queue)
                queue.clear()
                self._bytes = 0
            else:
                entries = self._take(max_payload)
            space = self._space
            if space is not None and not self.full:
                self._space = None
                if not space.done():
                    space.set_result(None)
            self._seq += 1
            payload = _codec.pack(self._sender, self._seq, self._ack_out(), entries)
            if not self._unacked:
                self._progress = loop.time()
            self._unacked.append((self._seq, len(payload)))
            self._in_flight += len(payload)
            try:
                await self._publish(self.subject, payload)
            except Exception as exc:  # any NATS failure: count, keep going
                self._metrics.events_dropped_slow_consumer += len(entries)
                log(
                    _logger,
                    logging.WARNING,
                    "cluster.publish_failed",
                    peer=self.member,
                    frames=len(entries),
                    error=repr(exc),
                )


class RemoteOutbound(Outbound):
    """The outbound queue of a stand-in: frames go to the peer's link, addressed to a client.

    ``prefix`` marks frames that are not data frames (control frames, see ``_codec``).
    """

    __slots__ = ("_client", "_link", "_prefix")

    def __init__(self, link: Link, client_id: str, metrics: Metrics, prefix: bytes = b"") -> None:
        super().__init__(1, metrics)
        self._link = link
        self._client = client_id.encode()
        self._prefix = prefix

    @property
    def full(self) -> bool:
        """Return True when the link to the peer is full."""
        return self._link.full

    def offer(self, frame: bytes) -> bool:
        """Queue ``frame`` on the link; notices are not relayed (stand-ins are not v1)."""
        return self._link.put(self._client, self._prefix + frame if self._prefix else frame)

    def offer_request(self, frame: bytes, host_id: str, timeout_ms: int) -> bool:
        """Queue a request with the header the peer routes it by (AWP-CLU-026)."""
        return self._link.put(self._client, _codec.call(frame, host_id, timeout_ms))

    def owe(self, item: Owed) -> None:
        """Relay a frame the host owes the remote client at once, past the link's limit if need
        be (owed frames never wait, AWP-FLOW-007); notices are not relayed (not v1)."""
        if item.kind == "notice":
            return
        data = item.encode()
        self._link.put(self._client, self._prefix + data if self._prefix else data, force=True)

    async def offer_wait(self, frame: bytes, timeout_s: float) -> bool:
        """Queue ``frame``, waiting for room on the link.

        The peer disconnects its own slow consumer within ``timeout_s``, which frees the link;
        this waits twice as long, then drops the frame and counts it rather than cut the remote
        worker off from this node only.
        """
        if self.offer(frame):
            return True
        if await self._link.wait_room(2 * timeout_s) and self.offer(frame):
            return True
        self._metrics.events_dropped_slow_consumer += 1
        log(_logger, logging.WARNING, "cluster.link_full", peer=self._link.member)
        return True


class RemoteWorker(DataConnection):
    """A worker on another node, as the router sees it.

    As a target it receives this node's requests and events for that worker; as a caller it
    stands for requests that node relayed here, and answers go back to it. Either way its
    frames go to the peer's link. It is not v1 (``Notice`` frames are not relayed).
    """

    __slots__ = ("member",)

    # The worker's node answers DEADLINE_EXCEEDED (and tells a late worker so); this node
    # expires the call itself only if that answer does not come.
    deadline_grace_ms: ClassVar[int] = 1_000
    relayed: ClassVar[bool] = True

    def __init__(
        self, client_id: str, member: str, link: Link, metrics: Metrics, *, shares: bool
    ) -> None:
        super().__init__(
            client_id,
            f"{member}/{client_id}",
            RemoteOutbound(link, client_id, metrics),
            v1=False,
            capabilities=frozenset(),
            batching=False,
            shares_types=shares,
        )
        self.member = member


class RemoteControl(ControlConnection):
    """The control channel of a requester on another node, while its requests are relayed."""

    __slots__ = ("member",)

    def __init__(
        self, client_id: str, member: str, link: Link, metrics: Metrics, *, v1: bool
    ) -> None:
        super().__init__(
            client_id,
            f"{member}/{client_id}/control",
            RemoteOutbound(link, client_id, metrics, _codec.CONTROL_TO_CLIENT),
            v1=v1,
        )
        self.member = member
