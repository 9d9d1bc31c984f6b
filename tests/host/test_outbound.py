"""The outbound queue: owed frames behind a full queue, and waiters let in one at a time."""

from __future__ import annotations

import asyncio

import pytest

from reference_host import Metrics
from reference_host._outbound import Outbound, OwedFrame


class _Gate:
    """A writer that records frames and blocks until released, one frame per release."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self._permits = asyncio.Semaphore(0)

    async def write(self, data: bytes) -> None:
        await self._permits.acquire()
        self.written.append(data)

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self._permits.release()


async def _until(predicate: object, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-007")
async def test_owed_frames_wait_behind_a_full_queue_and_go_out_in_order() -> None:
    metrics = Metrics()
    outbound = Outbound(2, metrics)
    gate = _Gate()
    writer = asyncio.create_task(outbound.run(gate.write))
    assert outbound.offer(b"\x1aa")
    assert outbound.offer(b"\x1ab")
    # The writer holds one frame while it waits to write; fill the room it left.
    await _until(lambda: len(outbound) == 1)
    assert outbound.offer(b"\x1ac")
    assert not outbound.offer(b"\x1ad"), "the queue is full"
    for name in (b"x", b"y", b"z"):
        outbound.owe(OwedFrame(b"\x12" + name, "response"))
    assert outbound.owed == 3
    assert outbound.backlogged
    assert outbound.full
    assert not outbound.offer(b"\x1ae"), "owed frames go first"
    gate.release(6)
    await _until(lambda: len(gate.written) == 6)
    assert gate.written == [b"\x1aa", b"\x1ab", b"\x1ac", b"\x12x", b"\x12y", b"\x12z"]
    assert outbound.owed == 0
    assert metrics.owed_frames == 3
    outbound.owe(OwedFrame(b"\x12w", "response"))
    outbound.close()
    assert metrics.frames_undelivered == {"response": 1}
    await asyncio.wait_for(writer, 5)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-009")
async def test_waiters_are_let_in_one_at_a_time_in_order() -> None:
    outbound = Outbound(1, Metrics())
    gate = _Gate()
    writer = asyncio.create_task(outbound.run(gate.write))
    assert outbound.offer(b"\x1a0")
    await _until(lambda: len(outbound) == 0)
    assert outbound.offer(b"\x1a1")
    order: list[int] = []

    async def wait_in_line(index: int) -> None:
        assert await outbound.offer_wait(bytes((0x1A, 0x30 + index)), 10.0)
        order.append(index)

    waiters = [asyncio.create_task(wait_in_line(i)) for i in range(2, 7)]
    await _until(lambda: len(outbound._waiters) == 5)
    # Each frame written lets exactly one waiter in.
    gate.release()
    await _until(lambda: order == [2])
    assert len(outbound._waiters) == 4
    gate.release(5)
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert order == [2, 3, 4, 5, 6]
    outbound.close()
    gate.release()  # the writer still holds the last frame
    await asyncio.wait_for(writer, 5)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-FLOW-003")
async def test_a_waiter_times_out_and_leaves_the_line() -> None:
    outbound = Outbound(1, Metrics())
    assert outbound.offer(b"\x1a0")
    assert not await outbound.offer_wait(b"\x1a1", 0.05)
    assert not outbound._waiters
    outbound.close()
