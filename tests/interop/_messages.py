"""Our side of the messages the AutoGen scripts use.

The JSON messages are the very dataclasses the AutoGen side uses (interop/autogen/
interop_messages.py, standard library only, on pytest's pythonpath); the protobuf messages are
the conformance contract's own Ping and Pong.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from interop_messages import (  # interop/autogen/, on pytest's pythonpath
    AskProtobuf,
    Fail,
    Ping,
    Pong,
    Rendezvous,
    Stall,
)

from agentworker.conformance.v1 import contract_pb2
from reference_worker import Agent, AgentId, MessageContext, TopicId, handler


@dataclass
class Unknown:
    """A message type the AutoGen side has never heard of."""

    text: str


Received = tuple[AgentId, TopicId | None, Any, AgentId | None]


class Inbox:
    """Collects items and lets a test wait, with a deadline, until enough have arrived."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Condition()

    def add(self, item: Any) -> None:
        self.items.append(item)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int, within: float = 20.0) -> list[Any]:
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: len(self.items) >= count)
        except TimeoutError:
            raise AssertionError(
                f"{len(self.items)} of {count} items within {within} s: {self.items!r}"
            ) from None
        return list(self.items)


class OurAgent(Agent):
    """Our agent in the interop scenarios: answers Pings (JSON and protobuf), asks for protobuf
    replies, fails on Fail, waits on Rendezvous and Stall, and records every Ping event."""

    inbox: Inbox | None = None
    calls: Inbox | None = None
    groups: dict[str, tuple[list[int], asyncio.Event]] = {}  # noqa: RUF012 - per test, reset

    @handler
    async def on_ping(self, message: Ping, ctx: MessageContext) -> Pong | None:
        if not ctx.is_rpc:
            self._record(message, ctx)
            return None
        if OurAgent.calls is not None:
            OurAgent.calls.add((self.id, message, ctx.sender))
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @handler
    async def on_protobuf_ping(
        self, message: contract_pb2.Ping, ctx: MessageContext
    ) -> contract_pb2.Pong | None:
        if not ctx.is_rpc:
            self._record(message, ctx)
            return None
        return contract_pb2.Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @handler
    async def on_ask_protobuf(self, message: AskProtobuf, ctx: MessageContext) -> contract_pb2.Pong:
        return contract_pb2.Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @handler
    async def on_fail(self, message: Fail, ctx: MessageContext) -> Pong:
        raise RuntimeError(message.message)

    @handler
    async def on_stall(self, message: Stall, ctx: MessageContext) -> Pong:
        await asyncio.sleep(message.seconds)
        return Pong(text=message.text, agent_key=self.id.key)

    @handler
    async def on_rendezvous(self, message: Rendezvous, ctx: MessageContext) -> Pong:
        arrived, everyone = OurAgent.groups.setdefault(message.group, ([0], asyncio.Event()))
        arrived[0] += 1
        if arrived[0] >= message.parties:
            everyone.set()
        try:
            async with asyncio.timeout(message.timeout):
                await everyone.wait()
        except TimeoutError:
            raise RuntimeError(
                f"rendezvous {message.group!r}: {arrived[0]} of {message.parties} calls came"
            ) from None
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    def _record(self, message: object, ctx: MessageContext) -> None:
        if OurAgent.inbox is not None:
            OurAgent.inbox.add((self.id, ctx.topic_id, message, ctx.sender))
