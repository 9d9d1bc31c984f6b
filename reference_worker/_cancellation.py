"""Cancellation tokens: a handler's signal to stop (deadline passed, worker draining)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

__all__ = ["CancellationToken"]

_log = logging.getLogger("reference_worker")


class CancellationToken:
    """Cancelled at most once; callbacks run at cancellation (at once if already cancelled).

    A handler's token (``ctx.cancellation_token``) is cancelled when the call's deadline passes
    or the worker begins to drain. Pass it to ``send_message`` to abandon a call with it.
    """

    __slots__ = ("_callbacks", "_cancelled")

    def __init__(self) -> None:
        self._cancelled = False
        self._callbacks: list[Callable[[], object]] = []

    def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not keep the others from running
                _log.exception("cancellation callback failed")

    def is_cancelled(self) -> bool:
        return self._cancelled

    def add_callback(self, callback: Callable[[], object]) -> None:
        if self._cancelled:
            callback()
        else:
            self._callbacks.append(callback)

    def link_future(self, future: asyncio.Future[object]) -> asyncio.Future[object]:
        """Cancels `future` when the token is cancelled; returns it."""
        self.add_callback(future.cancel)
        return future
