"""Outbound correlation: the calls this worker made that wait for a response (AWP-RPC-001)."""

from __future__ import annotations

import asyncio
import itertools
import logging

from agentworker.v1 import agentworker_pb2
from reference_worker._errors import AgentWorkerError

__all__ = ["OutboundCalls"]

_log = logging.getLogger("reference_worker")

Response = agentworker_pb2.RpcResponse


class OutboundCalls:
    """Request ids and the futures of the calls in flight, matched by id in any order."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Response]] = {}

    def begin(self) -> tuple[str, asyncio.Future[Response]]:
        """A fresh request id (unique per worker, so per connection) and its future."""
        request_id = str(next(self._ids))
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        return request_id, future

    def end(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def on_response(self, response: Response) -> None:
        future = self._pending.pop(response.request_id, None)  # AWP-RPC-007
        if future is None or future.done():
            # AWP-RPC-008: not ours (or already given up): discard.
            _log.info("discarding response for unknown request id %r", response.request_id)
            return
        future.set_result(response)

    def fail(self, request_id: str, error: AgentWorkerError) -> None:
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_exception(error)

    def fail_all(self, error: AgentWorkerError) -> None:
        """AWP-CONN-019: nobody is left waiting when the channel ends."""
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def __len__(self) -> int:
        return len(self._pending)
