"""AutoGen workers and reference_worker on one reference host: events and RPCs both ways.

The AutoGen side is interop/autogen/mixed_worker.py (agent type `ag_mixed`, a TypeSubscription
to `interop.to_autogen` and a TypePrefixSubscription to `interop.prefix_autogen.`) and
interop/autogen/caller.py; our side is a reference_worker Worker serving `ours`, subscribed to
`interop.to_ours` (type) and `interop.prefix_ours.` (prefix).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from interop_messages import (
    AskProtobuf,
    CallRequest,
    CallResult,
    Fail,
    Ping,
    Pong,
    Published,
    PublishRequest,
)

from agentworker.conformance.v1 import contract_pb2
from reference_host import Host
from reference_worker import (
    AgentId,
    AgentWorkerError,
    HandlerFailedError,
    TopicId,
    UnknownMessageTypeError,
    Worker,
    prefix_subscription,
    type_subscription,
)
from tests.interop._autogen import AutoGenProcess, event_is
from tests.interop._messages import Inbox, OurAgent
from tests.interop.conftest import StartAutoGen, WorkerFactory

pytestmark = pytest.mark.asyncio

PING_PB = "agentworker.conformance.v1.Ping"
PONG_PB = "agentworker.conformance.v1.Pong"


@dataclass
class Scene:
    host: Host
    mixed: AutoGenProcess
    worker: Worker
    events: Inbox
    calls: Inbox


@pytest_asyncio.fixture
async def scene(
    host: Host, autogen: StartAutoGen, make_worker: WorkerFactory
) -> AsyncIterator[Scene]:
    events, calls = Inbox(), Inbox()
    OurAgent.inbox, OurAgent.calls, OurAgent.groups = events, calls, {}
    mixed = await autogen(
        "mixed_worker.py",
        "--agent-type",
        "ag_mixed",
        "--topic-type",
        "interop.to_autogen",
        "--topic-prefix",
        "interop.prefix_autogen.",
        "--stdin-lifeline",
        name="mixed",
    )
    worker = await make_worker()
    for reply in (Published, CallResult, Pong):  # replies we decode from AutoGen
        worker.add_message_type(reply)
    await worker.register(
        "ours",
        OurAgent,
        subscriptions=[
            type_subscription("interop.to_ours"),
            prefix_subscription("interop.prefix_ours."),
        ],
    )
    try:
        yield Scene(host, mixed, worker, events, calls)
    finally:
        OurAgent.inbox = OurAgent.calls = None


@pytest.mark.requirement("AWP-PUB-001", "AWP-PUB-003", "AWP-PUB-010", "AWP-SUB-010", "AWP-SUB-011")
async def test_our_events_reach_autogen_by_type_prefix_and_direct_subscription(
    scene: Scene,
) -> None:
    sender = AgentId("ours", "publisher")
    # Matches no subscription: never delivered, and it goes first, so that it would show up.
    await scene.worker.publish(Ping("nobody", 0), TopicId("interop.elsewhere", "s0"), sender=sender)
    await scene.worker.publish(Ping("json", 1), TopicId("interop.to_autogen", "s1"), sender=sender)
    await scene.worker.publish(
        contract_pb2.Ping(text="protobuf", seq=2),
        TopicId("interop.prefix_autogen.anything", "s2"),
        sender=sender,
    )
    await scene.worker.publish(Ping("direct", 3), TopicId("ag_mixed:direct", "s3"), sender=sender)

    received = await scene.mixed.wait_for_count(event_is("received"), 3, within=20.0)
    assert [(line["agent"], line["topic"], line["sender"]) for line in received] == [
        (["ag_mixed", "s1"], ["interop.to_autogen", "s1"], ["ours", "publisher"]),
        (["ag_mixed", "s2"], ["interop.prefix_autogen.anything", "s2"], ["ours", "publisher"]),
        (["ag_mixed", "s3"], ["ag_mixed:direct", "s3"], ["ours", "publisher"]),
    ]
    assert [(line["type"], line["encoding"], line["body"]) for line in received] == [
        ("Ping", "json", {"text": "json", "seq": 1}),
        (PING_PB, "protobuf", {"text": "protobuf", "seq": 2, "stall_ms": 0}),
        ("Ping", "json", {"text": "direct", "seq": 3}),
    ]
    assert scene.host.metrics.events_received == 4
    assert scene.host.metrics.events_delivered == 3


@pytest.mark.requirement("AWP-PUB-001", "AWP-PUB-011", "AWP-PUB-022", "AWP-SUB-010")
async def test_autogen_events_reach_our_agents_as_json_and_protobuf(scene: Scene) -> None:
    publisher = AgentId("ag_mixed", "publisher")
    answer = await scene.worker.send(
        PublishRequest("interop.to_ours", "t1", count=3, encoding="json", text="from-autogen"),
        publisher,
        timeout=10.0,
    )
    assert answer == Published(3, "json")
    answer = await scene.worker.send(
        PublishRequest("interop.prefix_ours.pb", "t2", count=2, encoding="protobuf", text="pb"),
        publisher,
        timeout=10.0,
    )
    assert answer == Published(2, "protobuf")

    items = await scene.events.wait_for(5)
    as_json = [item for item in items if isinstance(item[2], Ping)]
    as_protobuf = [item for item in items if isinstance(item[2], contract_pb2.Ping)]
    # Each publisher connection's events arrive in the order they were published.
    assert as_json == [
        (
            AgentId("ours", "t1"),
            TopicId("interop.to_ours", "t1"),
            Ping("from-autogen", n),
            publisher,
        )
        for n in (1, 2, 3)
    ]
    assert [(a, t, (m.text, m.seq), s) for a, t, m, s in as_protobuf] == [
        (AgentId("ours", "t2"), TopicId("interop.prefix_ours.pb", "t2"), ("pb", n), publisher)
        for n in (1, 2)
    ]
    assert scene.worker.undecodable_events == 0


@pytest.mark.requirement("AWP-RPC-003", "AWP-RPC-004", "AWP-RPC-020", "AWP-ERR-003", "AWP-VER-011")
async def test_our_rpcs_to_an_autogen_agent(scene: Scene) -> None:
    target = AgentId("ag_mixed", "k1")
    caller = AgentId("ours", "caller")

    reply = await scene.worker.send(Ping("hello", 7), target, sender=caller, timeout=10.0)
    assert reply == Pong("hello", 7, "k1")

    # A protobuf request decodes on the AutoGen side; AutoGen answers every RPC in JSON.
    reply = await scene.worker.send(
        contract_pb2.Ping(text="binary", seq=8), target, sender=caller, timeout=10.0
    )
    assert reply == Pong("binary", 8, "k1")

    # A handler's exception comes back as a legacy error string: handler failed.
    with pytest.raises(HandlerFailedError, match="boom from the test"):
        await scene.worker.send(Fail("boom from the test"), target, timeout=10.0)

    # An exception whose text is empty makes AutoGen send an empty `error` and no payload:
    # that looks like success, yet it must never come back as a successful result.
    with pytest.raises((AgentWorkerError, UnknownMessageTypeError)):
        await scene.worker.send(Fail(""), target, timeout=10.0)

    seen = scene.mixed.matching(event_is("rpc"))
    assert [(line["type"], line["encoding"], line["sender"]) for line in seen] == [
        ("Ping", "json", ["ours", "caller"]),
        (PING_PB, "protobuf", ["ours", "caller"]),
        ("Fail", "json", None),
        ("Fail", "json", None),
    ]
    # AutoGen sees the host's request ids, never ours.
    assert all(line["request_id"] for line in seen)
    # The host sent this legacy worker no v1-only frame (AutoGen logs "No message" for a frame
    # whose case it does not know).
    assert "No message" not in scene.mixed.stderr.decode(errors="replace")


@pytest.mark.requirement("AWP-RPC-003", "AWP-RPC-004", "AWP-ERR-002", "AWP-ERR-003")
async def test_autogen_rpcs_to_our_agent(scene: Scene, autogen: StartAutoGen) -> None:
    caller = await autogen("caller.py", "--name", "caller", name="caller")

    result = await caller.call(("ours", "k1"), "Ping", {"text": "to-ours", "seq": 3})
    assert result["ok"] is True, result
    assert (result["reply_type"], result["reply_encoding"], result["reply"]) == (
        "Pong",
        "json",
        {"text": "to-ours", "seq": 3, "agent_key": "k1"},
    )

    # Our agent answers a JSON request with a protobuf reply; AutoGen decodes it.
    result = await caller.call(("ours", "k1"), "AskProtobuf", {"text": "want-pb", "seq": 4})
    assert result["ok"] is True, result
    assert (result["reply_type"], result["reply_encoding"], result["reply"]) == (
        PONG_PB,
        "protobuf",
        {"text": "want-pb", "seq": 4, "agent_key": "k1"},
    )

    # Our handler's failure reaches AutoGen as an exception carrying our error string.
    result = await caller.call(("ours", "k1"), "Fail", {"message": "our own failure"})
    assert result["ok"] is False
    assert "our own failure" in result["error"]
    assert result["timed_out"] is False

    # AutoGen labels every RPC payload application/json, so it cannot send a protobuf one:
    # the call fails inside AutoGen and nothing reaches the host.
    requests_before = scene.host.metrics.rpc_requests
    result = await caller.call(("ours", "k1"), PING_PB, {"text": "pb", "seq": 5})
    assert result["ok"] is False
    assert f"Unknown type {PING_PB} with content type application/json" in result["error"]
    assert scene.host.metrics.rpc_requests == requests_before


@pytest.mark.requirement("AWP-RPC-001", "AWP-RPC-003", "AWP-RPC-004")
async def test_autogen_agent_calls_our_agent_on_our_request(scene: Scene) -> None:
    """A chain across both runtimes: ours -> AutoGen agent -> our agent -> back."""
    result = await scene.worker.send(
        CallRequest("ours", "k9", "via-autogen", seq=11, timeout=10.0),
        AgentId("ag_mixed", "relay"),
        timeout=20.0,
    )
    assert result == CallResult(
        ok=True, text="via-autogen", seq=11, agent_key="k9", reply_type="Pong"
    )
    (called,) = await scene.calls.wait_for(1)
    assert called == (AgentId("ours", "k9"), Ping("via-autogen", 11), AgentId("ag_mixed", "relay"))

    # The same chain to our agent asking for a protobuf reply works too.
    result = await scene.worker.send(AskProtobuf("x"), AgentId("ours", "k9"), timeout=10.0)
    assert isinstance(result, contract_pb2.Pong)
