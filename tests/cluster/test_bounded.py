"""A wait whose deadline holds when the awaited code swallows a cancellation
(reference_host/cluster/_bounded.py), as nats-py's first connection can on Python 3.11."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from reference_host.cluster._bounded import finish_within

pytestmark = pytest.mark.asyncio


async def test_a_result_within_the_deadline_is_returned() -> None:
    async def quick() -> str:
        await asyncio.sleep(0)
        return "connected"

    assert await finish_within(quick(), 5.0) == "connected"


async def test_retries_that_swallow_cancellations_still_end_at_the_deadline() -> None:
    swallowed = 0
    ended = asyncio.Event()

    async def retry_forever() -> str:
        # Like a connect loop whose inner wait loses the cancellation: it goes on retrying.
        nonlocal swallowed
        try:
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    swallowed += 1
                    if swallowed >= 3:
                        raise
        finally:
            ended.set()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await finish_within(retry_forever(), 0.2)
    assert ended.is_set()
    assert swallowed == 3
    # The deadline, then one short wait per cancellation it took.
    assert loop.time() - started < 0.2 + 3 * 0.25 + 1.0


async def test_a_result_that_arrives_while_cancelling_is_discarded() -> None:
    discarded: list[str] = []

    async def late() -> str:
        # The cancellation is lost, and a connection is made after all.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        return "late connection"

    async def close(result: str) -> None:
        discarded.append(result)

    with pytest.raises(TimeoutError):
        await finish_within(late(), 0.05, discard=close)
    assert discarded == ["late connection"]
