"""Per-connection state: the bounded outbound queue, its writer, and channel bookkeeping.

Each channel has exactly one writer coroutine. Producers call ``Outbound.offer`` (non-blocking;
it fails when the queue is full) or ``Outbound.offer_wait`` (waits for space up to a timeout).
When batching is in force, the writer takes everything queued when it wakes (up to the
worker's batch limit) and writes it as one frame: no timers, no added latency, no reordering.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, Final

import grpc

from . import _wire
from ._metrics import Metrics

if TYPE_CHECKING:
    from ._rpc import PendingCall

# Upper bound of a Batch frame's encoded size (lowered to the host's message limit when that is
# smaller). A single larger frame is still sent alone.
MAX_BATCH_BYTES: Final = 1024 * 1024

Write = Callable[[bytes], Awaitable[None]]


class Outbound:
    """A bounded FIFO of encoded frames with a single writer."""

    __slots__ = (
        "_batching",
        "_closed",
        "_finishing",
        "_limit",
        "_max_batch",
        "_max_batch_bytes",
        "_metrics",
        "_queue",
        "_space",
        "_wakeup",
    )

    def __init__(
        self,
        limit: int,
        metrics: Metrics,
        *,
        batching: bool = False,
        max_batch: int = 1,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._queue: collections.deque[bytes] = collections.deque()
        self._limit = limit
        self._metrics = metrics
        self._batching = batching and max_batch > 1
        self._max_batch = max(1, max_batch)
        self._max_batch_bytes = min(max_batch_bytes, MAX_BATCH_BYTES)
        self._wakeup: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._finishing = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Return True when an offer would fail now."""
        return not self._closed and len(self._queue) >= self._limit

    def offer(self, frame: bytes) -> bool:
        """Queue ``frame`` if there is room; return False when the queue is full.

        A closed queue accepts and discards the frame: its connection is going away.
        """
        queue = self._queue
        if len(queue) >= self._limit:
            return self._closed
        if self._closed:
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

    async def offer_wait(self, frame: bytes, timeout_s: float) -> bool:
        """Queue ``frame``, waiting up to ``timeout_s`` for room; return False on timeout."""
        if self.offer(frame):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._space is None or self._space.done():
                self._space = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._space), remaining)
            except TimeoutError:
                return self.offer(frame)
            if self.offer(frame):
                return True

    def finish(self) -> None:
        """Let the writer send what is queued, then return."""
        self._finishing = True
        self._wake()

    def close(self) -> None:
        """Discard queued frames and stop the writer; later offers are discarded."""
        self._closed = True
        self._queue.clear()
        self._wake()
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def run(self, write: Write) -> None:
        """Write queued frames with ``write`` until finished or closed."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        metrics = self._metrics
        while True:
            if self._closed:
                return
            if not queue:
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
            else:
                data = queue.popleft()
            space = self._space
            if space is not None and len(queue) < self._limit:
                self._space = None
                if not space.done():
                    space.set_result(None)
            await write(data)


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

    __slots__ = ()
