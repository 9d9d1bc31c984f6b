"""Links to other nodes: a bounded queue of frames per peer and one writer that batches them.

The writer takes everything queued when it wakes and publishes it as few NATS messages as the
server's payload limit allows: no timers, so a lone frame leaves at once and a burst shares
messages, as a data channel batches (spec 12.2, AWP-CLU-014).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from reference_host._connection import DataConnection, Outbound
from reference_host._logging import log
from reference_host._metrics import Metrics

from . import _codec

_logger = logging.getLogger("reference_host.cluster")

Publish = Callable[[str, bytes], Awaitable[None]]

# Room a message keeps for its sender header.
_HEADER_ROOM: Final = 128


class Link:
    """Frames waiting to go to one peer node, in the order they were routed."""

    __slots__ = (
        "_bytes",
        "_closed",
        "_limit_bytes",
        "_max_payload",
        "_metrics",
        "_publish",
        "_queue",
        "_sender",
        "_space",
        "_wakeup",
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
        max_payload: int,
        limit_bytes: int,
    ) -> None:
        self.member = member
        self.subject = subject
        self._sender = sender.encode()
        self._publish = publish
        self._metrics = metrics
        self._max_payload = max(4096, max_payload - _HEADER_ROOM)
        self._limit_bytes = limit_bytes
        self._queue: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self._bytes = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def full(self) -> bool:
        """Return True when the queue holds its limit of bytes."""
        return self._bytes >= self._limit_bytes and not self._closed

    def put(self, client: bytes, frame: bytes) -> bool:
        """Queue ``frame`` for ``client`` at the peer; return False when the queue is full."""
        if self._closed:
            return True
        if self._bytes >= self._limit_bytes:
            return False
        if len(frame) + len(client) + 16 > self._max_payload:
            # NATS cannot carry it: say so instead of dropping it silently.
            self._metrics.frames_invalid += 1
            log(
                _logger,
                logging.ERROR,
                "cluster.frame_too_large",
                peer=self.member,
                client_id=client.decode(),
                size=len(frame),
                max_payload=self._max_payload,
            )
            return True
        self._queue.append((client, frame))
        self._bytes += len(frame)
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

    async def run(self) -> None:
        """Publish queued frames until closed."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        while not self._closed:
            if not queue:
                wakeup: asyncio.Future[None] = loop.create_future()
                self._wakeup = wakeup
                try:
                    await wakeup
                finally:
                    self._wakeup = None
                continue
            entries: list[tuple[bytes, bytes]] = []
            size = 0
            sent_bytes = 0
            while queue:
                client, frame = queue[0]
                added = len(client) + len(frame) + 8
                if entries and size + added > self._max_payload:
                    break
                queue.popleft()
                entries.append((client, frame))
                size += added
                sent_bytes += len(frame)
            self._bytes -= sent_bytes
            space = self._space
            if space is not None and not self.full:
                self._space = None
                if not space.done():
                    space.set_result(None)
            try:
                await self._publish(self.subject, _codec.pack(self._sender, entries))
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
    """The outbound queue of a stand-in: frames go to the peer's link, addressed to a client."""

    __slots__ = ("_client", "_link")

    def __init__(self, link: Link, client_id: str, metrics: Metrics) -> None:
        super().__init__(1, metrics)
        self._link = link
        self._client = client_id.encode()

    @property
    def full(self) -> bool:
        """Return True when the link to the peer is full."""
        return self._link.full

    def offer(self, frame: bytes) -> bool:
        """Queue ``frame`` on the link; notices are not relayed (stand-ins are not v1)."""
        return self._link.put(self._client, frame)

    async def offer_wait(self, frame: bytes, timeout_s: float) -> bool:
        """Queue ``frame``, waiting up to ``timeout_s`` for room on the link."""
        if self._link.put(self._client, frame):
            return True
        if not await self._link.wait_room(timeout_s):
            return False
        return self._link.put(self._client, frame)


class RemoteWorker(DataConnection):
    """A worker on another node, as the router sees it.

    As a target it receives this node's requests and events for that worker; as a caller it
    stands for requests that node relayed here, and answers go back to it. Either way its
    frames go to the peer's link. It is not v1 (``Notice`` frames are not relayed).
    """

    __slots__ = ("member",)

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
