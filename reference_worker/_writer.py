"""The data channel's writer: one task draining a bounded queue, batching when allowed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from agentworker.v1 import agentworker_pb2
from reference_worker._errors import TargetUnavailableError

__all__ = ["FrameWriter"]

_log = logging.getLogger("reference_worker.writer")
Frame = agentworker_pb2.OpenChannelRequest
DEFAULT_MAX_BATCH = 1024


class FrameWriter:
    """Writes frames in the order they were queued.

    When batching is in force, each time the writer is ready it sends everything queued at
    that moment: one frame alone, several as one batch frame (AWP-BAT-004). Nothing waits for
    a timer, and the order never changes. A full queue makes `put` wait (backpressure).
    """

    def __init__(self, call: Any, *, maxsize: int = 1024) -> None:
        self._call = call
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize)
        self._dead = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batching = False
        self.max_batch = DEFAULT_MAX_BATCH
        self.frames_written = 0
        self.batches_written = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="frame-writer")

    @property
    def closed(self) -> bool:
        return self._dead.is_set()

    async def put(self, frame: Frame) -> None:
        """Queues a frame; raises TargetUnavailableError once the channel is gone."""
        if self._dead.is_set():
            raise TargetUnavailableError("data channel is closed")
        try:
            self._queue.put_nowait(frame)
            return
        except asyncio.QueueFull:
            pass
        putter = asyncio.ensure_future(self._queue.put(frame))
        dead = asyncio.ensure_future(self._dead.wait())
        try:
            await asyncio.wait({putter, dead}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dead.cancel()
            if not putter.done():
                putter.cancel()
        if not putter.done() or putter.cancelled():
            raise TargetUnavailableError("data channel is closed")

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                if frame is None:
                    await self._call.done_writing()
                    return
                frames = [frame]
                finish = False
                if self.batching:
                    while len(frames) < self.max_batch and not self._queue.empty():
                        more = self._queue.get_nowait()
                        if more is None:
                            finish = True
                            break
                        frames.append(more)
                if len(frames) == 1:
                    await self._call.write(frames[0])
                else:
                    batch = Frame(batch=Frame.Batch(messages=frames))
                    await self._call.write(batch)
                    self.batches_written += 1
                self.frames_written += len(frames)
                if finish:
                    await self._call.done_writing()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream ended under us; the reader reports the loss
            _log.debug("writer stopped: %r", exc)
        finally:
            self._dead.set()

    async def close(self, limit: float) -> None:
        """Writes what is queued, half-closes the stream and ends the task."""
        if self._task is None:
            return
        if not self._dead.is_set():
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                # Queue full: wait for room, bounded by the limit.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(limit):
                        await self._queue.put(None)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(limit):
                await asyncio.shield(self._task)
        self.abort()

    def abort(self) -> None:
        """Stops writing at once (the channel is gone)."""
        self._dead.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
