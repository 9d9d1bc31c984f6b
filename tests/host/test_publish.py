"""Publish: fan-out exactly once per matching worker, order, validation, unroutable types."""

from __future__ import annotations

import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from tests.host._raw import RawWorker, event, hello, prefix_sub, type_sub
from tests.host.conftest import ConnectWorker


async def _worker_with_marker(connect: ConnectWorker, name: str) -> RawWorker:
    """Connect a worker serving agent type ``name`` that also receives topic "marker"."""
    worker = await connect(name, hello())
    await worker.register(name)
    await worker.subscribe(type_sub(f"{name}-marker", "marker", name))
    return worker


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-010", "AWP-SUB-010")
async def test_event_reaches_each_matching_worker_exactly_once(connect: ConnectWorker) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    exact = await _worker_with_marker(connect, "exact")
    double = await _worker_with_marker(connect, "double")
    other = await _worker_with_marker(connect, "other")
    bystander = await _worker_with_marker(connect, "bystander")
    await double.register("double2")
    await publisher.subscribe(type_sub("pub-news", "news.sports", "pub"))
    await exact.subscribe(type_sub("exact-news", "news.sports", "exact"))
    # Two subscriptions (exact and prefix, two agent types) lead to the same worker.
    await double.subscribe(type_sub("double-news", "news.sports", "double"))
    await double.subscribe(prefix_sub("double-prefix", "news.", "double2"))
    await other.subscribe(type_sub("other-news", "news.weather", "other"))
    await bystander.subscribe(prefix_sub("bystander-prefix", "news.sportsx", "bystander"))

    sent = event("news.sports", "match-1", event_id="goal")
    await publisher.publish(sent)
    await publisher.publish(event("marker", event_id="end"))

    for worker in (publisher, exact, double):
        received = await worker.events_until("end")
        assert received == [sent], worker.client_id
    for worker in (other, bystander):
        assert await worker.events_until("end") == [], worker.client_id


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-010")
async def test_prefix_subscription_matches_byte_wise_prefix(connect: ConnectWorker) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    listener = await _worker_with_marker(connect, "listener")
    await listener.subscribe(prefix_sub("direct", "listener:", "listener"))
    await publisher.publish(event("listener:abc", "k1", event_id="hit-1"))
    await publisher.publish(event("listener:", "k2", event_id="hit-2"))
    await publisher.publish(event("listener", "k3", event_id="miss"))
    await publisher.publish(event("Listener:abc", "k4", event_id="miss-case"))
    await publisher.publish(event("marker", event_id="end"))
    assert [e.id for e in await listener.events_until("end")] == ["hit-1", "hit-2"]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-011", "AWP-CONN-011")
async def test_events_keep_publisher_order(connect: ConnectWorker) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    consumers = [await _worker_with_marker(connect, f"c{i}") for i in range(2)]
    for consumer in consumers:
        await consumer.subscribe(type_sub(f"{consumer.client_id}-seq", "seq", consumer.client_id))
    count = 300
    for i in range(count):
        await publisher.publish(event("seq", "s", event_id=f"n{i}"))
    await publisher.publish(event("marker", event_id="end"))
    for consumer in consumers:
        received = await consumer.events_until("end")
        assert [e.id for e in received] == [f"n{i}" for i in range(count)]


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-003", "AWP-OBS-005")
async def test_event_is_forwarded_unchanged(connect: ConnectWorker) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    consumer = await _worker_with_marker(connect, "consumer")
    await consumer.subscribe(type_sub("c-full", "full", "consumer"))
    sent = event("full", "src/with/slashes", event_id="e-full", data=b'{"x": [1, 2, 3]}')
    sent.attributes[
        "traceparent"
    ].ce_string = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    sent.attributes["agagentsendertype"].ce_string = "pub"
    sent.attributes["count"].ce_integer = 7
    sent.attributes["flag"].ce_boolean = True
    await publisher.publish(sent)
    received = (await consumer.next_of("cloud_event")).cloud_event
    assert received == sent
    assert received.SerializeToString(deterministic=True) == sent.SerializeToString(
        deterministic=True
    )


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-004", "AWP-ERR-010")
@pytest.mark.parametrize(
    ("event_id", "event_type", "spec_version"),
    [("", "bad", "1.0"), ("id-1", "", "1.0"), ("id-2", "bad", "0.3"), ("id-3", "bad", "")],
)
async def test_invalid_event_is_not_delivered_and_gets_notice(
    host: Host, connect: ConnectWorker, event_id: str, event_type: str, spec_version: str
) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    consumer = await _worker_with_marker(connect, "consumer")
    await consumer.subscribe(type_sub("bad-sub", "bad", "consumer"))
    bad = event(event_type, event_id=event_id)
    bad.spec_version = spec_version
    await publisher.publish(bad)
    notice = (await publisher.next_of("notice")).notice
    assert notice.code == pb.ERROR_CODE_INVALID_REQUEST
    assert notice.event_id == event_id
    assert notice.message
    await publisher.publish(event("marker", event_id="end"))
    assert await consumer.events_until("end") == []
    assert host.metrics.frames_invalid == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-004", "AWP-VER-011")
async def test_invalid_event_from_legacy_publisher_is_only_counted(
    host: Host, connect: ConnectWorker
) -> None:
    publisher = await connect("legacy-pub")
    await publisher.register("lp")
    await publisher.subscribe(type_sub("lp-marker", "marker", "lp"))
    await publisher.publish(event("", event_id="bad"))
    await publisher.publish(event("marker", event_id="end"))
    assert (await publisher.next()).cloud_event.id == "end"
    assert host.metrics.frames_invalid == 1


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-PUB-012")
async def test_subscription_to_unserved_type_is_counted_unroutable(
    host: Host, connect: ConnectWorker
) -> None:
    publisher = await _worker_with_marker(connect, "pub")
    await publisher.subscribe(type_sub("ghost-sub", "haunted", "ghost"))
    await publisher.subscribe(type_sub("pub-haunted", "haunted", "pub"))
    await publisher.publish(event("haunted", event_id="boo"))
    await publisher.publish(event("marker", event_id="end"))
    assert [e.id for e in await publisher.events_until("end")] == ["boo"]
    assert host.metrics.events_unroutable == 1
    assert host.metrics.events_received == 2
