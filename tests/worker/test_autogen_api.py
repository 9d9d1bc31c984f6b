"""The AutoGen names and shapes (RoutedAgent, message_handler, DefaultTopicId, ...) and the
call context: deadline, cancellation token and the host's default timeout (AWP-RPC-012)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from reference_host import Host, HostConfig
from reference_worker import (
    AgentId,
    AgentType,
    DeadlineExceededError,
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    TopicId,
    TypeSubscription,
    Worker,
    default_subscription,
    message_handler,
    type_subscription,
)
from tests.worker.conftest import Inbox, WorkerFactory, address_of

pytestmark = pytest.mark.asyncio


@dataclass
class Note:
    content: str


@dataclass
class Wait:
    seconds: float


@dataclass
class Seen:
    cancelled: bool
    had_deadline: bool


@default_subscription
class Chatter(RoutedAgent):
    """Answers a Note on the default topic of the conversation it came from."""

    inbox: Inbox

    def __init__(self, name: str) -> None:
        super().__init__("a chatty agent")
        self._name = name
        self._count = 0

    @message_handler
    async def on_note(self, message: Note, ctx: MessageContext) -> None:
        Chatter.inbox.add((self._name, self.id.key, message.content))
        self._count += 1
        if self._count == 1:
            await self.publish_message(
                Note(f"{self._name} saw {message.content}"), DefaultTopicId()
            )

    async def save_state(self) -> Mapping[str, Any]:
        return {"count": self._count}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._count = int(state["count"])


@type_subscription(topic_type="alerts")
class Alarm(RoutedAgent):
    inbox: Inbox

    @message_handler
    async def on_note(self, message: Note, ctx: MessageContext) -> None:
        Alarm.inbox.add((self.id.key, message.content))


class Waiter(RoutedAgent):
    """Waits for its token (or the time given) and reports what it saw."""

    tokens: Inbox

    @message_handler
    async def on_wait(self, message: Wait, ctx: MessageContext) -> Seen:
        Waiter.tokens.add(ctx.cancellation_token)
        cancelled = asyncio.Event()
        ctx.cancellation_token.add_callback(cancelled.set)
        try:
            async with asyncio.timeout(message.seconds):
                await cancelled.wait()
        except TimeoutError:
            pass
        return Seen(ctx.cancellation_token.is_cancelled(), ctx.deadline is not None)


@pytest.fixture(autouse=True)
def _inboxes() -> None:
    Chatter.inbox = Inbox()
    Alarm.inbox = Inbox()
    Waiter.tokens = Inbox()


async def test_register_with_class_decorators_and_default_topic(
    make_worker: WorkerFactory,
) -> None:
    first = await make_worker()
    second = await make_worker()
    registered = await Chatter.register(first, "one", lambda: Chatter("one"))
    assert registered == AgentType("one")
    await Chatter.register(second, "two", lambda: Chatter("two"))
    await Alarm.register(second, "alarm", Alarm)
    assert {s.spec.topic for s in second.subscriptions} >= {"default", "alerts", "alarm:"}
    await first.publish_message(Note("hello"), DefaultTopicId(source="room"))
    seen = await Chatter.inbox.wait_for(4)
    # Each agent answers on the source it heard from: DefaultTopicId() inside a handler.
    assert sorted(seen) == [
        ("one", "room", "hello"),
        ("one", "room", "two saw hello"),
        ("two", "room", "hello"),
        ("two", "room", "one saw hello"),
    ]
    await first.publish_message(Note("fire"), TopicId("alerts", "a1"))
    assert await Alarm.inbox.wait_for(1) == [("a1", "fire")]


async def test_add_subscription_takes_a_bound_type_subscription(
    make_worker: WorkerFactory,
) -> None:
    worker = await make_worker()
    await Alarm.register(worker, "late", Alarm, skip_class_subscriptions=True)
    assert all(s.spec.topic != "alerts" for s in worker.subscriptions)
    await worker.add_subscription(TypeSubscription(topic_type="extra", agent_type="late"))
    sender = await make_worker()
    await sender.publish_message(Note("x"), TopicId("extra", "e1"))
    assert await Alarm.inbox.wait_for(1) == [("e1", "x")]


async def test_state_is_a_mapping_that_round_trips(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await Chatter.register(server, "stateful", lambda: Chatter("s"))
    client = await make_worker()
    await client.load_agent_state(AgentId("stateful", "k"), '{"count": 7}')
    assert await client.save_agent_state(AgentId("stateful", "k")) == '{"count": 7}'


async def test_send_message_token_fires_at_the_deadline(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await Waiter.register(server, "waiter", Waiter)
    client = await make_worker()
    client.add_message_type(Seen)
    with pytest.raises(DeadlineExceededError):
        await client.send_message(Wait(30), AgentId("waiter", "k"), timeout=1.0)
    (token,) = await Waiter.tokens.wait_for(1)
    async with asyncio.timeout(10):
        done = asyncio.Event()
        token.add_callback(done.set)
        await done.wait()
    assert token.is_cancelled()


async def test_stop_cancels_running_handlers_tokens_and_lets_them_answer(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker()
    await Waiter.register(server, "waiter", Waiter)
    client = await make_worker()
    client.add_message_type(Seen)
    call = asyncio.ensure_future(client.send_message(Wait(30), AgentId("waiter", "k")))
    await Waiter.tokens.wait_for(1)
    await server.stop(grace=10.0)  # drains like SIGTERM (AWP-CONN-017)
    assert await asyncio.wait_for(call, 10) == Seen(cancelled=True, had_deadline=True)


@pytest_asyncio.fixture
async def short_default_host() -> AsyncIterator[Host]:
    config = HostConfig(metrics_log_interval_s=0, default_rpc_timeout_ms=400)
    server = Host(address="127.0.0.1:0", config=config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


@pytest.mark.requirement("AWP-RPC-012", "AWP-RPC-010")
async def test_send_without_timeout_uses_the_hosts_announced_default(
    short_default_host: Host,
) -> None:
    async with Worker(address_of(short_default_host)) as server:
        await Waiter.register(server, "waiter", Waiter)
        async with Worker(address_of(short_default_host)) as client:
            client.add_message_type(Seen)
            assert client.welcome is not None
            assert client.welcome.default_rpc_timeout_ms == 400
            # The host's 400 ms apply, not a client-side default: the 20 s handler is cut.
            with pytest.raises(DeadlineExceededError):
                await client.send_message(Wait(20), AgentId("waiter", "k"))
