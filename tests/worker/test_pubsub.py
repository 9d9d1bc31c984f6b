"""Publish and subscribe between workers (sections 8 and 9) and batching (12.2)."""

from __future__ import annotations

import pytest

from agentworker.v1 import agentworker_pb2
from reference_host import Host
from reference_worker import (
    AgentId,
    HostConnectionError,
    TopicId,
    TraceContext,
    Worker,
    default_subscription,
    prefix_subscription,
    trace_scope,
    type_subscription,
)
from tests.worker.agents import Greeting, Listener, TraceRecorder
from tests.worker.conftest import Inbox, WorkerFactory, address_of

pytestmark = pytest.mark.asyncio


@pytest.mark.requirement("AWP-PUB-001", "AWP-SUB-010")
async def test_type_subscription_delivers_to_the_key_of_the_topic_source(
    make_worker: WorkerFactory,
) -> None:
    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register(
        "listener", lambda: Listener(inbox), subscriptions=[type_subscription("news")]
    )
    sender = await make_worker()
    await sender.publish(Greeting("hi"), TopicId("news", "room-1"))
    await sender.publish(Greeting("ignored"), TopicId("news.other", "room-1"))
    await sender.publish(Greeting("second"), TopicId("news", "room-2"))
    items = await inbox.wait_for(2)
    assert [(key, message.text) for key, _, message, _ in items] == [
        ("room-1", "hi"),
        ("room-2", "second"),
    ]
    assert items[0][1] == TopicId("news", "room-1")


async def test_prefix_subscription(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register(
        "listener", lambda: Listener(inbox), subscriptions=[prefix_subscription("news.")]
    )
    sender = await make_worker()
    await sender.publish(Greeting("no"), TopicId("news", "s"))
    await sender.publish(Greeting("yes"), TopicId("news.sports", "s"))
    items = await inbox.wait_for(1)
    assert [message.text for _, _, message, _ in items] == ["yes"]


@pytest.mark.requirement("AWP-SUB-011")
async def test_direct_addressing_reaches_one_agent(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register("listener", lambda: Listener(inbox))
    sender = await make_worker()
    await sender.publish(Greeting("direct"), TopicId("listener:inbox", "k9"))
    items = await inbox.wait_for(1)
    assert items[0][0] == "k9"


@pytest.mark.requirement("AWP-SUB-012")
async def test_sender_does_not_receive_its_own_event(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    chat = TopicId("default", "room")
    worker = await make_worker()
    await worker.register(
        "listener",
        lambda: Listener(inbox, echo_to=chat),
        subscriptions=[default_subscription()],
    )
    other = await make_worker()
    # From a non-agent: listener/room gets it once and echoes it as listener/room;
    # the echo is not delivered back to its sender.
    await other.publish(Greeting("start"), chat)
    items = await inbox.wait_for(1)
    # A marker published afterwards by another sender proves the echo was not delivered.
    await other.publish(Greeting("marker"), chat)
    items = await inbox.wait_for(2)
    assert [m.text for _, _, m, _ in items] == ["start", "marker"]
    assert items[0][3] is None


async def test_sender_attributes_name_the_publishing_agent(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    echoes = Inbox()
    first = await make_worker()
    await first.register(
        "speaker",
        lambda: Listener(inbox, echo_to=TopicId("replies", "r")),
        subscriptions=[type_subscription("ask")],
    )
    second = await make_worker()
    await second.register(
        "collector", lambda: Listener(echoes), subscriptions=[type_subscription("replies")]
    )
    await second.publish(Greeting("q", 1), TopicId("ask", "s1"))
    items = await echoes.wait_for(1)
    key, topic, message, sender = items[0]
    assert (key, topic, message) == ("r", TopicId("replies", "r"), Greeting("echo q", 1))
    assert sender == AgentId("speaker", "s1")


@pytest.mark.requirement("AWP-BAT-003", "AWP-BAT-004", "AWP-PUB-011")
async def test_batched_publishes_arrive_in_order(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register(
        "listener", lambda: Listener(inbox), subscriptions=[type_subscription("seq")]
    )
    sender = await make_worker()
    assert sender.in_force(agentworker_pb2.CAPABILITY_BATCHING)
    count = 500
    for n in range(count):
        await sender.publish(Greeting("n", n), TopicId("seq", "one"))
    items = await inbox.wait_for(count, within=30)
    assert [message.seq for _, _, message, _ in items] == list(range(count))
    conn = sender.connection
    assert conn is not None
    assert conn.writer is not None
    assert conn.writer.batches_written >= 1


async def test_undecodable_event_is_counted_not_fatal(make_worker: WorkerFactory) -> None:
    from dataclasses import dataclass

    @dataclass
    class Stranger:
        x: int

    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register(
        "listener", lambda: Listener(inbox), subscriptions=[type_subscription("mixed")]
    )
    sender = await make_worker()
    await sender.publish(Stranger(1), TopicId("mixed", "s"))
    await sender.publish(Greeting("after"), TopicId("mixed", "s"))
    items = await inbox.wait_for(1)
    assert items[0][2] == Greeting("after")
    assert receiver.undecodable_events == 1


async def test_worker_as_context_manager_and_default_topic(host: Host) -> None:
    inbox = Inbox()
    async with Worker(address_of(host)) as receiver, Worker(address_of(host)) as sender:
        await receiver.register(
            "listener", lambda: Listener(inbox), subscriptions=[default_subscription()]
        )
        await sender.publish(Greeting("d"), TopicId.default("room"))
        items = await inbox.wait_for(1)
        assert items[0][:2] == ("room", TopicId("default", "room"))
    assert receiver.connection is None


async def test_a_refused_registration_is_forgotten(make_worker: WorkerFactory) -> None:
    first = await make_worker()
    await first.register("taken", lambda: Listener(Inbox()))
    second = await make_worker()
    with pytest.raises(HostConnectionError):
        await second.register("taken", lambda: Listener(Inbox()))
    assert all(s.agent_type != "taken" for s in second.subscriptions)


async def test_removed_subscription_no_longer_delivers(make_worker: WorkerFactory) -> None:
    inbox = Inbox()
    receiver = await make_worker()
    await receiver.register(
        "listener", lambda: Listener(inbox), subscriptions=[type_subscription("keep")]
    )
    removable = await receiver.add_subscription(type_subscription("drop"), "listener")
    sender = await make_worker()
    await sender.publish(Greeting("first"), TopicId("drop", "s"))
    await inbox.wait_for(1)
    await receiver.remove_subscription(removable)
    await sender.publish(Greeting("dropped"), TopicId("drop", "s"))
    await sender.publish(Greeting("marker"), TopicId("keep", "s"))  # arrives after, in order
    items = await inbox.wait_for(2)
    assert [message.text for _, _, message, _ in items] == ["first", "marker"]


@pytest.mark.requirement("AWP-OBS-004")
async def test_trace_context_travels_with_events(make_worker: WorkerFactory) -> None:
    first_hop = Inbox()
    second_hop = Inbox()
    relay = await make_worker()
    await relay.register(
        "relay",
        lambda: TraceRecorder(first_hop, relay_to=TopicId("traced.out", "s")),
        subscriptions=[type_subscription("traced.in")],
    )
    sink = await make_worker()
    await sink.register(
        "sink", lambda: TraceRecorder(second_hop), subscriptions=[type_subscription("traced.out")]
    )
    sent = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=1")
    with trace_scope(sent):
        await sink.publish(Greeting("t"), TopicId("traced.in", "s"))
    received, handler_context = (await first_hop.wait_for(1))[0]
    assert received == sent
    assert handler_context.trace_id == sent.trace_id
    assert handler_context.traceparent != sent.traceparent
    relayed, _ = (await second_hop.wait_for(1))[0]
    assert relayed == handler_context  # the relay's span is the parent of the next hop
