"""A bidirectional stream seen by the harness: frames written, frames read into an inbox,
and waits with deadlines for frames that match a predicate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from conformance._cases import CaseFailure
from conformance._trace import Trace
from conformance._wire import describe

__all__ = ["FrameStream"]

_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

FrameT = TypeVar("FrameT", bound=Message)


class FrameStream(Generic[FrameT]):
    """Wraps one grpc.aio stream-stream call. A reader task records every frame in the trace
    and appends it to an inbox; ``expect`` takes the first matching frame out of it."""

    def __init__(
        self,
        call: Any,
        *,
        label: str,
        trace: Trace,
        scale: float,
        unpack: Callable[[FrameT], list[FrameT]] | None = None,
    ) -> None:
        self._call = call
        self._label = label
        self._trace = trace
        self._scale = scale
        self._unpack = unpack
        self._inbox: list[FrameT] = []
        self._changed = asyncio.Event()
        self._ended = asyncio.Event()
        self._closing = False
        self.end_code: grpc.StatusCode | None = None
        self.end_details: str = ""
        self.frames_received = 0
        self.caseless_frames = 0  # frames with no case of their `message` oneof set
        self._has_message_oneof: bool | None = None
        # False keeps bulk traffic out of the trace (it records a count instead).
        self.trace_frames = True
        self._may_read = asyncio.Event()
        self._may_read.set()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                await self._may_read.wait()
                frame = await self._call.read()
                if frame is _EOF:
                    self.end_code = grpc.StatusCode.OK
                    self._trace.note(self._label, "stream ended by the subject (OK)")
                    break
                self._accept(frame)
        except grpc.aio.AioRpcError as exc:
            self.end_code = exc.code()
            self.end_details = exc.details() or ""
            if not self._closing:
                self._trace.note(
                    self._label, f"stream ended: {self.end_code.name} {self.end_details!r}"
                )
        except asyncio.CancelledError:
            self.end_code = grpc.StatusCode.CANCELLED
        except Exception as exc:  # a harness bug: reported in the trace, the stream ends
            self.end_code = grpc.StatusCode.UNKNOWN
            self.end_details = f"harness reader failed: {type(exc).__name__}: {exc}"
            self._trace.note(self._label, self.end_details)
        finally:
            self._ended.set()
            self._changed.set()

    def _accept(self, frame: FrameT) -> None:
        if self._has_message_oneof is None:
            self._has_message_oneof = "message" in frame.DESCRIPTOR.oneofs_by_name
        self.frames_received += 1
        if self._has_message_oneof and frame.WhichOneof("message") is None:
            self.caseless_frames += 1
        if self.trace_frames:
            self._trace.received(self._label, describe(frame))
        frames = self._unpack(frame) if self._unpack is not None else [frame]
        self._inbox.extend(frames)
        self._changed.set()

    @property
    def call(self) -> Any:
        """Return the underlying grpc.aio call."""
        return self._call

    @property
    def ended(self) -> bool:
        """Return whether the stream has ended."""
        return self._ended.is_set()

    def pause(self) -> None:
        """Stop reading after the read in progress (a slow consumer); gRPC flow control then
        pushes back on the subject."""
        self._trace.note(self._label, "stops reading")
        self._may_read.clear()

    def resume(self) -> None:
        """Read again."""
        self._trace.note(self._label, f"reads again ({self.frames_received} frames so far)")
        self._may_read.set()

    async def write(self, frame: Message | bytes) -> None:
        """Write one frame (a message, or raw bytes for deliberately odd frames)."""
        if self.trace_frames:
            self._trace.sent(self._label, describe(frame))
        if self._ended.is_set():
            raise CaseFailure(f"{self._label}: cannot write, the stream ended ({self._end_text()})")
        try:
            await self._call.write(frame)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            raise CaseFailure(f"{self._label}: cannot write, the stream ended ({exc})") from exc

    async def expect(
        self, what: str, predicate: Callable[[FrameT], bool], within: float = 5.0
    ) -> FrameT:
        """Return (and remove) the first inbox frame matching ``predicate``, waiting up to
        ``within`` seconds (scaled); fail the case when none arrives."""
        loop = asyncio.get_running_loop()
        limit = within * self._scale
        deadline = loop.time() + limit
        while True:
            self._changed.clear()
            for index, frame in enumerate(self._inbox):
                if predicate(frame):
                    del self._inbox[index]
                    return frame
            if self._ended.is_set():
                raise CaseFailure(
                    f"{self._label}: stream ended ({self._end_text()}) while waiting for {what}"
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CaseFailure(f"{self._label}: no {what} within {limit:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def settle(self, period: float = 0.3) -> list[FrameT]:
        """Wait ``period`` seconds and return, removing them, all frames in the inbox: what
        arrived that no expectation consumed. The quiet period is not scaled: it can only
        miss a late extra frame, never fail a correct subject."""
        await asyncio.sleep(period)
        frames, self._inbox = self._inbox, []
        return frames

    def peek(self) -> list[FrameT]:
        """Return the frames now in the inbox, leaving them there."""
        return list(self._inbox)

    def take_all(self) -> list[FrameT]:
        """Return and remove every frame now in the inbox."""
        frames, self._inbox = self._inbox, []
        return frames

    async def wait_end(self, within: float = 5.0) -> grpc.StatusCode | None:
        """Wait up to ``within`` seconds (scaled) for the stream to end; return its status
        code, or None if it is still open."""
        try:
            await asyncio.wait_for(self._ended.wait(), within * self._scale)
        except TimeoutError:
            return None
        return self.end_code

    def _end_text(self) -> str:
        code = self.end_code.name if self.end_code is not None else "?"
        return f"{code} {self.end_details!r}" if self.end_details else code

    async def close(self) -> None:
        """Cancel the call (an abrupt disconnect) and stop the reader."""
        self._closing = True
        self._call.cancel()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
