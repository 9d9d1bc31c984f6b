"""Message types and agents shared by the integration tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reference_worker import Agent, MessageContext, TopicId, current_trace, handler
from tests.worker.conftest import Inbox


@dataclass
class Question:
    text: str


@dataclass
class Answer:
    text: str


@dataclass
class Boom:
    reason: str


@dataclass
class Slow:
    seconds: float


@dataclass
class Nothing:
    pass


@dataclass
class Unhandled:
    pass


@dataclass
class Greeting:
    text: str
    seq: int = 0


@dataclass
class Remember:
    value: str


@dataclass
class TraceProbe:
    pass


class Echo(Agent):
    """Answers questions, fails on Boom, sleeps on Slow, returns None on Nothing."""

    started: asyncio.Event | None = None

    def __init__(self) -> None:
        super().__init__()
        self.value = ""

    @handler
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        return Answer(f"{self.id.key}: {message.text}")

    @handler
    async def on_boom(self, message: Boom, ctx: MessageContext) -> Answer:
        raise RuntimeError(message.reason)

    @handler
    async def on_slow(self, message: Slow, ctx: MessageContext) -> Answer:
        if Echo.started is not None:
            Echo.started.set()
        await asyncio.sleep(message.seconds)
        return Answer("slept")

    @handler
    async def on_nothing(self, message: Nothing, ctx: MessageContext) -> None:
        return None

    @handler
    async def on_remember(self, message: Remember, ctx: MessageContext) -> Answer:
        self.value = message.value
        return Answer(self.value)

    @handler
    async def on_trace(self, message: TraceProbe, ctx: MessageContext) -> Answer:
        current = current_trace()
        received = ctx.trace.traceparent if ctx.trace else ""
        return Answer(json.dumps([received, current.traceparent if current else ""]))

    async def save_state(self) -> Mapping[str, Any]:
        return {"value": self.value}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self.value = str(state["value"])


class Gate(Agent):
    """Counts how many of its handlers run at once."""

    active = 0
    peak = 0

    @handler
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        Gate.active += 1
        Gate.peak = max(Gate.peak, Gate.active)
        try:
            await asyncio.sleep(0.05)
        finally:
            Gate.active -= 1
        return Answer("ok")


class Listener(Agent):
    """Records every Greeting event it receives into a shared inbox."""

    def __init__(self, inbox: Inbox, echo_to: TopicId | None = None) -> None:
        super().__init__()
        self._inbox = inbox
        self._echo_to = echo_to

    @handler
    async def on_greeting(self, message: Greeting, ctx: MessageContext) -> None:
        self._inbox.add((self.id.key, ctx.topic_id, message, ctx.sender))
        if self._echo_to is not None:
            await self.publish(Greeting(f"echo {message.text}", message.seq), self._echo_to)


class TraceRecorder(Agent):
    """Records the trace context each Greeting arrived with; relays the first hop onwards."""

    def __init__(self, inbox: Inbox, relay_to: TopicId | None = None) -> None:
        super().__init__()
        self._inbox = inbox
        self._relay_to = relay_to

    @handler
    async def on_greeting(self, message: Greeting, ctx: MessageContext) -> None:
        current = current_trace()
        self._inbox.add((ctx.trace, current))
        if self._relay_to is not None:
            await self.publish(Greeting("relayed"), self._relay_to)
