"""The frame writer: batching without delay and without reordering (section 12.2)."""

from __future__ import annotations

import asyncio

import pytest

from agentworker.v1 import agentworker_pb2
from reference_worker import TargetUnavailableError
from reference_worker._writer import FrameWriter

Frame = agentworker_pb2.OpenChannelRequest


class FakeCall:
    def __init__(self) -> None:
        self.written: list[Frame] = []
        self.half_closed = False

    async def write(self, frame: Frame) -> None:
        self.written.append(frame)

    async def done_writing(self) -> None:
        self.half_closed = True


def _frame(n: int) -> Frame:
    return Frame(request=agentworker_pb2.RpcRequest(request_id=str(n)))


def _ids(frames: list[Frame]) -> list[str]:
    out: list[str] = []
    for frame in frames:
        if frame.WhichOneof("message") == "batch":
            out += [inner.request.request_id for inner in frame.batch.messages]
        else:
            out.append(frame.request.request_id)
    return out


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-004", "AWP-BAT-002")
async def test_queued_frames_go_out_as_one_batch_and_a_lone_frame_alone() -> None:
    call = FakeCall()
    writer = FrameWriter(call)
    writer.batching = True
    for n in range(5):
        await writer.put(_frame(n))  # queued before the writer task first runs
    writer.start()
    await writer.close(5.0)
    assert len(call.written) == 1
    assert call.written[0].WhichOneof("message") == "batch"
    assert _ids(call.written) == ["0", "1", "2", "3", "4"]
    assert call.half_closed

    call = FakeCall()
    writer = FrameWriter(call)
    writer.batching = True
    writer.start()
    await writer.put(_frame(9))
    await writer.close(5.0)
    assert [f.WhichOneof("message") for f in call.written] == ["request"]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-BAT-001")
async def test_without_batching_every_frame_is_sent_alone_in_order() -> None:
    call = FakeCall()
    writer = FrameWriter(call)
    for n in range(4):
        await writer.put(_frame(n))
    writer.start()
    await writer.close(5.0)
    assert [f.WhichOneof("message") for f in call.written] == ["request"] * 4
    assert _ids(call.written) == ["0", "1", "2", "3"]


@pytest.mark.asyncio
async def test_batches_respect_the_receivers_limit() -> None:
    call = FakeCall()
    writer = FrameWriter(call)
    writer.batching = True
    writer.max_batch = 3
    for n in range(7):
        await writer.put(_frame(n))
    writer.start()
    await writer.close(5.0)
    assert [len(f.batch.messages) for f in call.written[:2]] == [3, 3]
    assert _ids(call.written) == [str(n) for n in range(7)]


@pytest.mark.asyncio
async def test_a_full_queue_fails_waiting_writers_when_the_channel_dies() -> None:
    call = FakeCall()
    writer = FrameWriter(call, maxsize=1)
    await writer.put(_frame(0))
    blocked = asyncio.ensure_future(writer.put(_frame(1)))
    await asyncio.sleep(0)
    assert not blocked.done()
    writer.abort()
    with pytest.raises(TargetUnavailableError):
        await asyncio.wait_for(blocked, 5.0)
    with pytest.raises(TargetUnavailableError):
        await writer.put(_frame(2))
