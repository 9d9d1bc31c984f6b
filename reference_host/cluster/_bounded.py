"""A wait with a deadline that holds even when the awaited code swallows a cancellation.

``asyncio.wait_for`` cancels its awaitable at the deadline and then waits for it to end,
without a bound. nats-py's first connection retries forever (as its reconnects do), so it
must be cancelled; and on Python 3.11 a cancellation can be lost inside its own waits (an
inner ``asyncio.wait_for`` returns its result when that result and the cancellation arrive
together), after which the retries go on and ``asyncio.wait_for`` never returns. Here the
task is cancelled again until it ends, within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

# After the deadline: how often, and how long apart, the task is cancelled until it ends.
_CANCEL_ROUNDS: Final = 20
_CANCEL_WAIT_S: Final = 0.25


async def finish_within(
    coro: Coroutine[Any, Any, T],
    timeout_s: float,
    discard: Callable[[T], Awaitable[object]] | None = None,
) -> T:
    """Return the result of ``coro`` if it ends within ``timeout_s``; else cancel it (again
    and again, for at most ``_CANCEL_ROUNDS * _CANCEL_WAIT_S`` more) and raise TimeoutError.

    A result that arrives only while the task is being cancelled is passed to ``discard``
    (to close a connection nobody will use) before the TimeoutError.
    """
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task in done:
        return task.result()
    for _ in range(_CANCEL_ROUNDS):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=_CANCEL_WAIT_S)
        if task in done:
            break
    if task.done() and not task.cancelled() and task.exception() is None and discard:
        with contextlib.suppress(Exception):
            await discard(task.result())
    raise TimeoutError(f"not done within {timeout_s:g} s")
