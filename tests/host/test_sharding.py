"""Several workers per agent type: rendezvous hashing (unit) and routing by key (integration)."""

from __future__ import annotations

import asyncio

import pytest

import reference_host._sharding as sharding
from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host, Metrics, choose_member, rendezvous_score
from reference_host._connection import DataConnection
from reference_host._outbound import Outbound
from reference_host._registry import Registry
from tests.host._raw import TIMEOUT_S, RawWorker, event, eventually, hello, type_sub
from tests.host.conftest import ConnectWorker

KEYS = [f"key-{i}" for i in range(24)]


@pytest.mark.requirement("AWP-SHR-003")
def test_score_is_first_8_bytes_of_sha256_big_endian() -> None:
    # printf 'a\0b\0c' | sha256sum -> 8badde10c760e9b7...
    assert rendezvous_score("a", "b", "c") == 0x8BADDE10C760E9B7


@pytest.mark.requirement("AWP-SHR-003")
def test_highest_score_wins() -> None:
    members = ["w1", "w2", "w3"]
    for key in KEYS:
        best = max(members, key=lambda m: rendezvous_score(m, "t", key))
        assert choose_member(members, "t", key) == best
        assert choose_member(reversed(members), "t", key) == best
    assert choose_member([], "t", "k") is None


@pytest.mark.requirement("AWP-SHR-003")
def test_ties_go_to_the_lower_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharding, "rendezvous_score", lambda *_: 42)
    assert sharding.choose_member(["b", "c", "a"], "t", "k") == "a"


@pytest.mark.requirement("AWP-SHR-002", "AWP-SHR-003")
def test_only_keys_of_a_leaving_or_joining_member_move() -> None:
    members = ["w1", "w2", "w3"]
    before = {key: choose_member(members, "t", key) for key in KEYS}
    assert set(before.values()) == set(members), "keys spread over every member"
    after_leave = {key: choose_member(["w1", "w3"], "t", key) for key in KEYS}
    for key in KEYS:
        if before[key] != "w2":
            assert after_leave[key] == before[key]
    after_join = {key: choose_member([*members, "w4"], "t", key) for key in KEYS}
    for key in KEYS:
        assert after_join[key] in (before[key], "w4")


def _member(client_id: str) -> DataConnection:
    return DataConnection(
        client_id,
        f"conn-{client_id}",
        Outbound(8, Metrics()),
        v1=True,
        capabilities=frozenset({pb.CAPABILITY_SHARED_AGENT_TYPES}),
        batching=False,
        shares_types=True,
    )


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SHR-001", "AWP-SHR-002")
async def test_registry_lookup_follows_every_membership_change() -> None:
    registry = Registry(allow_sharing=True)
    one, two, three = _member("w1"), _member("w2"), _member("w3")
    assert registry.lookup("pool", "k") is None
    registry.register(one, "pool")
    assert {registry.lookup("pool", key) for key in KEYS} == {one}
    registry.register(two, "pool")
    expected = {key: choose_member(["w1", "w2"], "pool", key) for key in KEYS}
    assert {key: registry.lookup("pool", key).client_id for key in KEYS} == expected  # type: ignore[union-attr]
    registry.remove_connection(one)
    assert {registry.lookup("pool", key) for key in KEYS} == {two}
    # A new connection of the same client replaces the stale one.
    fresh = _member("w2")
    registry.register(fresh, "pool")
    assert {registry.lookup("pool", key) for key in KEYS} == {fresh}
    registry.set_members("pool", [fresh, three])
    expected = {key: choose_member(["w2", "w3"], "pool", key) for key in KEYS}
    assert {key: registry.lookup("pool", key).client_id for key in KEYS} == expected  # type: ignore[union-attr]
    registry.set_members("pool", [three])
    assert {registry.lookup("pool", key) for key in KEYS} == {three}
    registry.remove_connection(three)
    assert registry.lookup("pool", "k") is None


async def _shared(connect: ConnectWorker, name: str) -> RawWorker:
    worker = await connect(name, hello(pb.CAPABILITY_SHARED_AGENT_TYPES))
    await worker.register("pool")
    return worker


async def _route(caller: RawWorker, members: list[RawWorker], keys: list[str]) -> dict[str, str]:
    """Send one RPC per key and return which member received each; answer them all."""
    for key in keys:
        await caller.request(f"r-{key}", "pool", key)
    owners: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while len(owners) < len(keys):
        assert loop.time() < deadline, "requests did not all arrive"
        for member in members:
            try:
                frame = await member.next(within=0.05)
            except TimeoutError:
                continue
            request = frame.request
            owners[request.target.key] = member.client_id
            await member.respond(request.request_id, pb.Payload(data=b"ok"))
    for _ in keys:
        assert (await caller.next()).response.payload.data == b"ok"
    return owners


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SHR-001", "AWP-SHR-002", "AWP-SHR-004")
async def test_keys_spread_over_members_stay_put_and_move_when_a_member_leaves(
    host: Host, connect: ConnectWorker
) -> None:
    first = await _shared(connect, "member-1")
    second = await _shared(connect, "member-2")
    caller = await connect("caller", hello())
    members = [first, second]
    expected = {key: choose_member(["member-1", "member-2"], "pool", key) for key in KEYS}
    assert set(expected.values()) == {"member-1", "member-2"}
    assert await _route(caller, members, KEYS) == expected
    assert await _route(caller, members, KEYS) == expected

    await first.close()
    await eventually(lambda: host.metrics.connections_open == 2)
    owners = await _route(caller, [second], KEYS)
    assert set(owners.values()) == {"member-2"}


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SHR-001", "AWP-PUB-010")
async def test_events_for_a_shared_type_go_to_the_member_of_their_source(
    connect: ConnectWorker,
) -> None:
    first = await _shared(connect, "member-1")
    second = await _shared(connect, "member-2")
    publisher = await connect("publisher", hello())
    # Each member owns its subscriptions: a match counts only at its owner (AWP-SUB-013).
    for worker in (first, second):
        await worker.subscribe(type_sub(f"{worker.client_id}-jobs", "jobs", "pool"))
        await worker.subscribe(type_sub(f"{worker.client_id}-m", "marker", "pool"))
    for key in KEYS:
        await publisher.publish(event("jobs", key, event_id=f"job-{key}"))
    # The marker's source is chosen so that it reaches both members: one per member.
    markers: dict[str | None, str] = {}
    for key in KEYS:
        owner = choose_member(["member-1", "member-2"], "pool", key)
        markers.setdefault(owner, key)
    for owner, key in markers.items():
        await publisher.publish(event("marker", key, event_id=f"end-{owner}"))
    for worker in (first, second):
        received = await worker.events_until(f"end-{worker.client_id}")
        expected = [
            f"job-{key}"
            for key in KEYS
            if choose_member(["member-1", "member-2"], "pool", key) == worker.client_id
        ]
        assert [e.id for e in received] == expected
