"""A connection's outbound queue: bounded frames, owed frames, waiters, and the single writer.

Producers call ``Outbound.offer`` (non-blocking; it fails when the queue is full) or
``Outbound.offer_wait`` (waits for room up to a timeout). Waiters are woken one at a time, in
the order they started waiting, as the writer frees room: a thousand waiters cost a thousand
wake-ups in total, not a thousand per written frame.

Frames the host itself owes a connection (error responses for its calls, notices) never wait:
``Outbound.owe`` queues them behind the bounded queue, as small objects that encode themselves
when the writer makes room. Their number is bounded by the connection's calls in flight and by
the notices of one read frame, because the reader stops reading a connection that has owed
frames held back (``backlogged``).

When batching is in force, the writer takes everything queued when it wakes (up to the
worker's batch limit) and writes it as one frame: no timers, no added latency, no reordering.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from . import _wire
from ._metrics import Metrics

# Upper bound of a Batch frame's encoded size (lowered to the host's message limit when that is
# smaller). A single larger frame is still sent alone.
MAX_BATCH_BYTES: Final = 1024 * 1024

Write = Callable[[bytes], Awaitable[None]]


class Owed(Protocol):
    """A frame the host owes a connection, encoded only when the queue has room for it."""

    @property
    def kind(self) -> str:
        """Return the kind the frame is counted as when it cannot be delivered."""
        ...

    def encode(self) -> bytes:
        """Return the encoded frame."""
        ...


class OwedFrame:
    """An owed frame that is already encoded (control-channel answers)."""

    __slots__ = ("data", "kind")

    def __init__(self, data: bytes, kind: str) -> None:
        self.data = data
        self.kind = kind

    def encode(self) -> bytes:
        """Return the encoded frame."""
        return self.data


class Outbound:
    """A bounded FIFO of encoded frames, owed frames behind it, and a single writer."""

    __slots__ = (
        "_batching",
        "_closed",
        "_control",
        "_finishing",
        "_limit",
        "_max_batch",
        "_max_batch_bytes",
        "_metrics",
        "_owed",
        "_owed_drained",
        "_queue",
        "_waiters",
        "_wakeup",
        "backlogged",
        "written",
    )

    def __init__(
        self,
        limit: int,
        metrics: Metrics,
        *,
        batching: bool = False,
        max_batch: int = 1,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        control: bool = False,
    ) -> None:
        self._queue: collections.deque[bytes] = collections.deque()
        self._owed: collections.deque[Owed] = collections.deque()
        self._limit = limit
        self._metrics = metrics
        self._control = control
        self._batching = batching and max_batch > 1
        self._max_batch = max(1, max_batch)
        self._max_batch_bytes = min(max_batch_bytes, MAX_BATCH_BYTES)
        self._wakeup: asyncio.Future[None] | None = None
        # Producers waiting for room, in arrival order; woken one per freed slot.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._owed_drained: asyncio.Future[None] | None = None
        self._finishing = False
        self._closed = False
        # Frames handed to the transport so far: progress, as the slow-consumer rule sees it.
        self.written = 0
        # True while owed frames are held back (and the queue is open): the connection's reader
        # should wait. A plain attribute, read before every frame the reader takes.
        self.backlogged = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def owed(self) -> int:
        """Return how many owed frames wait behind the queue."""
        return len(self._owed)

    @property
    def full(self) -> bool:
        """Return True when an offer would fail now."""
        return not self._closed and (len(self._queue) >= self._limit or bool(self._owed))

    def offer(self, frame: bytes) -> bool:
        """Queue ``frame`` if there is room; return False when the queue is full.

        A closed queue accepts the frame and counts it as undelivered: its connection is going
        away.
        """
        queue = self._queue
        if len(queue) >= self._limit or self._owed:
            if self._closed:
                self._count_undelivered(frame)
                return True
            return False
        if self._closed:
            self._count_undelivered(frame)
            return True
        queue.append(frame)
        depth = len(queue)
        metrics = self._metrics
        if depth > metrics.queue_depth_max:
            metrics.queue_depth_max = depth
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)
        return True

    def offer_request(self, frame: bytes, host_id: str, timeout_ms: int) -> bool:
        """Queue the request frame ``frame`` of call ``host_id`` like ``offer``; a queue towards
        another node of a cluster also sends what that node needs to route the call without
        decoding the frame."""
        return self.offer(frame)

    def owe(self, item: Owed) -> None:
        """Queue a frame the host owes this connection; it never waits and is never dropped
        while the connection stays open (it waits behind a full queue instead)."""
        if self._closed:
            self._metrics.count_undelivered(item.kind)
            return
        if not self._owed and len(self._queue) < self._limit:
            self.offer(item.encode())
            return
        self._owed.append(item)
        self.backlogged = True
        self._metrics.owed_frames += 1

    async def offer_wait(self, frame: bytes, timeout_s: float) -> bool:
        """Queue ``frame``, waiting in line up to ``timeout_s`` for room; return False on
        timeout."""
        if not self._waiters and self.offer(frame):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waiters = self._waiters
        keep_turn = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self.offer(frame)
            waiter: asyncio.Future[None] = loop.create_future()
            if keep_turn:
                waiters.appendleft(waiter)
            else:
                waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                _discard(waiters, waiter)
                return self.offer(frame)
            except asyncio.CancelledError:
                _discard(waiters, waiter)
                raise
            if self.offer(frame):
                if waiters and len(self._queue) < self._limit:
                    # Room remains: pass the turn on to the next in line.
                    self._wake_waiter()
                return True
            # A producer that does not wait took the room first: keep the place in line.
            keep_turn = True

    async def wait_owed(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until no owed frame is held back; return True if none is."""
        if not self.backlogged:
            return True
        loop = asyncio.get_running_loop()
        if self._owed_drained is None or self._owed_drained.done():
            self._owed_drained = loop.create_future()
        await asyncio.wait({self._owed_drained}, timeout=timeout_s)
        return not self.backlogged

    def finish(self) -> None:
        """Let the writer send what is queued and owed, then return."""
        self._finishing = True
        self._wake()

    def close(self) -> None:
        """Discard what is queued and owed, counting it, and stop the writer; later frames are
        counted as undelivered."""
        if self._closed:
            return
        self._closed = True
        for frame in self._queue:
            self._count_undelivered(frame)
        for item in self._owed:
            self._metrics.count_undelivered(item.kind)
        self._queue.clear()
        self._owed.clear()
        self.backlogged = False
        self._wake()
        self._release_owed_waiter()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _count_undelivered(self, frame: bytes) -> None:
        self._metrics.count_undelivered("control" if self._control else _wire.kind_of(frame))

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    def _wake_waiter(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release_owed_waiter(self) -> None:
        drained = self._owed_drained
        if drained is not None:
            self._owed_drained = None
            if not drained.done():
                drained.set_result(None)

    def _refill(self) -> None:
        """Move owed frames into the queue while it has room, then wake one waiter."""
        queue, owed, limit = self._queue, self._owed, self._limit
        if owed:
            while owed and len(queue) < limit:
                queue.append(owed.popleft().encode())
            if not owed:
                self.backlogged = False
                self._release_owed_waiter()
        if self._waiters and len(queue) < limit:
            self._wake_waiter()

    async def run(self, write: Write) -> None:
        """Write queued frames with ``write`` until finished or closed."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        metrics = self._metrics
        while True:
            if self._closed:
                return
            if not queue:
                if self._owed:
                    self._refill()
                    continue
                if self._finishing:
                    return
                wakeup: asyncio.Future[None] = loop.create_future()
                self._wakeup = wakeup
                try:
                    await wakeup
                finally:
                    self._wakeup = None
                continue
            if self._batching and len(queue) > 1:
                first = queue.popleft()
                frames = [first]
                size = _wire.batch_overhead(len(first))
                max_batch = self._max_batch
                max_bytes = self._max_batch_bytes
                while queue and len(frames) < max_batch:
                    added = _wire.batch_overhead(len(queue[0]))
                    if size + added > max_bytes:
                        break
                    frames.append(queue.popleft())
                    size += added
                if len(frames) == 1:
                    data = first
                else:
                    data = _wire.batch(frames)
                    metrics.batches_sent += 1
                count = len(frames)
            else:
                data = queue.popleft()
                count = 1
            if self._owed or self._waiters:
                self._refill()
            await write(data)
            self.written += count


def _discard(
    waiters: collections.deque[asyncio.Future[None]], waiter: asyncio.Future[None]
) -> None:
    with contextlib.suppress(ValueError):
        waiters.remove(waiter)
