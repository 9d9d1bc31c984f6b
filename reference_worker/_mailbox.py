"""Inbound dispatch: one mailbox per agent, a bound on running handlers and on queued work.

An agent handles one message at a time, in arrival order (AWP-CONN-040); different agents run
concurrently up to `max_running` (AWP-CONN-041). Messages read but not yet started wait in their
agent's mailbox; all mailboxes together hold at most `max_queued` (AWP-FLOW-031). The reader
never waits for a handler slot (AWP-FLOW-030): a request finds room or is refused at once, and
only an event that fills the queue makes the reader wait for room (AWP-FLOW-032).

A handler that waits for the response to its own call gives its slot back meanwhile (its agent
stays busy), so handlers calling agents of the same worker cannot take every slot and wait
for requests that need one; it takes a slot again, before any new message starts, to go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from reference_worker._cancellation import CancellationToken
from reference_worker._ids import AgentId

__all__ = ["Delivery", "Dispatcher"]

_log = logging.getLogger("reference_worker")

T = TypeVar("T")


@dataclass(eq=False, slots=True)
class Delivery(Generic[T]):
    """One message for one agent; `token` is cancelled by a drain."""

    agent_id: AgentId
    item: T
    token: CancellationToken = field(default_factory=CancellationToken)
    holding: bool = False  # whether its handler holds a slot now


# The dispatcher and delivery whose handler runs in the current task.
_current: ContextVar[tuple[Any, Delivery[Any]] | None] = ContextVar(
    "agentworker_delivery", default=None
)


class Dispatcher(Generic[T]):
    """Starts `run(delivery)` for queued deliveries, one per agent at a time."""

    def __init__(
        self,
        run: Callable[[Delivery[T]], Awaitable[None]],
        *,
        max_running: int,
        max_queued: int,
    ) -> None:
        if max_running < 1 or max_queued < 1:
            raise ValueError("max_running and max_queued must be at least 1")
        self._run = run
        self.max_running = max_running
        self.max_queued = max_queued
        self._mailboxes: dict[AgentId, deque[Delivery[T]]] = {}
        self._ready: deque[AgentId] = deque()  # not busy, mailbox not empty, waiting for a slot
        self._busy: dict[AgentId, Delivery[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._resumers: deque[tuple[asyncio.Future[None], Delivery[T]]] = deque()
        self._slots_used = 0
        self._queued = 0
        self._room = asyncio.Event()
        self._room.set()
        self.closed = False
        self.high_water = 0

    @property
    def queued(self) -> int:
        """Deliveries read but not yet started."""
        return self._queued

    @property
    def running(self) -> int:
        """Handlers holding a slot (not those waiting for a response to their own call)."""
        return self._slots_used

    @property
    def busy_agents(self) -> int:
        return len(self._busy)

    @property
    def full(self) -> bool:
        return self._queued >= self.max_queued

    def offer(self, delivery: Delivery[T]) -> bool:
        """Queues a request's delivery; False when the queue is full (answer OVERLOADED)."""
        if self.full:
            return False
        self._enqueue(delivery)
        return True

    async def put(self, deliveries: list[Delivery[T]]) -> None:
        """Queues an event's deliveries (never refused), then waits while the queue is full."""
        for delivery in deliveries:
            self._enqueue(delivery)
        while self.full and not self.closed:
            await self._room.wait()

    def _enqueue(self, delivery: Delivery[T]) -> None:
        agent_id = delivery.agent_id
        mailbox = self._mailboxes.get(agent_id)
        if mailbox is None:
            mailbox = self._mailboxes[agent_id] = deque()
        mailbox.append(delivery)
        self._queued += 1
        self.high_water = max(self.high_water, self._queued)
        if self.full:
            self._room.clear()
        if len(mailbox) == 1 and agent_id not in self._busy:
            self._ready.append(agent_id)
        self._pump()

    def _pump(self) -> None:
        # Handlers going on after a call come first, even while draining.
        while self._resumers and self._slots_used < self.max_running:
            future, resumed = self._resumers.popleft()
            if future.done():
                continue
            self._slots_used += 1
            resumed.holding = True
            future.set_result(None)
        while not self.closed and self._ready and self._slots_used < self.max_running:
            agent_id = self._ready.popleft()
            mailbox = self._mailboxes[agent_id]
            delivery = mailbox.popleft()
            if not mailbox:
                del self._mailboxes[agent_id]
            self._queued -= 1
            self._busy[agent_id] = delivery
            self._slots_used += 1
            delivery.holding = True
            task = asyncio.get_running_loop().create_task(self._serve(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self.full:
            self._room.set()

    async def _serve(self, delivery: Delivery[T]) -> None:
        _current.set((self, delivery))
        try:
            await self._run(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("handler for %s failed unexpectedly", delivery.agent_id)
        finally:
            agent_id = delivery.agent_id
            if delivery.holding:
                delivery.holding = False
                self._slots_used -= 1
            del self._busy[agent_id]
            if agent_id in self._mailboxes:
                self._ready.append(agent_id)
            self._pump()

    @contextlib.asynccontextmanager
    async def waiting_for_call(self) -> AsyncIterator[None]:
        """Gives the current handler's slot back while the body waits for a response."""
        current = _current.get()
        if current is None or current[0] is not self or not current[1].holding:
            yield
            return
        delivery: Delivery[T] = current[1]
        delivery.holding = False
        self._slots_used -= 1
        self._pump()
        try:
            yield
        finally:
            await self._reacquire(delivery)

    async def _reacquire(self, delivery: Delivery[T]) -> None:
        if self._slots_used < self.max_running and not self._resumers:
            self._slots_used += 1
            delivery.holding = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (future, delivery)
        self._resumers.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if entry in self._resumers:
                self._resumers.remove(entry)
            raise

    def reopen(self) -> None:
        """Starts handlers again after a close (a worker started after a stop)."""
        self.closed = False
        self._pump()

    def close(self) -> list[Delivery[T]]:
        """Stops starting handlers; returns the deliveries that never started and cancels the
        tokens of the running ones (AWP-CONN-017)."""
        self.closed = True
        left = [delivery for mailbox in self._mailboxes.values() for delivery in mailbox]
        self._mailboxes.clear()
        self._ready.clear()
        self._queued = 0
        self._room.set()
        for delivery in self._busy.values():
            delivery.token.cancel()
        return left

    async def wait_running(self, grace: float) -> None:
        """Waits up to `grace` seconds for running handlers, then cancels the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
