"""Host cases: adding, removing and listing subscriptions, and cleanup on disconnect."""

from __future__ import annotations

import asyncio

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import prefix_subscription, rpc_request, type_subscription
from conformance._host_context import HostContext
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []


async def _ids(worker: RawWorker, wanted: set[str]) -> list[str]:
    return [s.id for s in await worker.subscriptions() if s.id in wanted]


@host_case(
    "host/subscriptions/add-list-remove",
    requirements=["AWP-SUB-001", "AWP-SUB-004", "AWP-SUB-006", "AWP-CONN-022"],
)
async def add_list_remove(ctx: HostContext) -> None:
    """Procedure: worker A adds a TypeSubscription S1 and a TypePrefixSubscription S2, adds S1
    again with the same content, lists, removes S1, lists.

    Asserts: (each in a step of its own; a failed one does not stop the others) the adds
    succeed; the repeated add succeeds; the first list holds S1 and S2 exactly once each with
    the content sent; RemoveSubscription of S1 succeeds; after it the list holds S2 and not
    S1."""
    agent_type = ctx.unique("subs")
    worker = await ctx.serving("a", agent_type)
    s1 = type_subscription(ctx.unique("s1"), ctx.unique("topic"), agent_type)
    s2 = prefix_subscription(ctx.unique("s2"), ctx.unique("prefix") + ".", agent_type)
    with ctx.step("AWP-SUB-001", "AddSubscription stores S1 and S2", gate=True):
        await worker.subscribe(s1)
        await worker.subscribe(s2)
    ctx.decide(
        "AWP-CONN-022",
        "a repeated identical AddSubscription succeeds",
        (code := (await worker.add_subscription_status(s1))[0]) is grpc.StatusCode.OK,
        f"the repeated add ended with {code.name}",
    )
    with ctx.step(("AWP-SUB-006", "AWP-CONN-022"), "GetSubscriptions lists S1 and S2 once each"):
        listed = [s for s in await worker.subscriptions() if s.id in (s1.id, s2.id)]
        ids = sorted(s.id for s in listed)
        ctx.check(ids == sorted([s1.id, s2.id]), f"listed {ids}, wanted S1 and S2 once each")
        by_id = {s.id: s for s in listed}
        ctx.check(by_id[s1.id] == s1, f"S1 listed as {by_id[s1.id]}")
        ctx.check(by_id[s2.id] == s2, f"S2 listed as {by_id[s2.id]}")
    ctx.check_status(
        await worker.remove_subscription_status(s1.id),
        grpc.StatusCode.OK,
        "RemoveSubscription",
        step=("AWP-SUB-004", "RemoveSubscription of S1 succeeds"),
    )
    with ctx.step("AWP-SUB-004", "after removal the list holds S2, not S1"):
        after = await _ids(worker, {s1.id, s2.id})
        ctx.check(after == [s2.id], f"after removing S1 the list holds {after}")


@host_case(
    "host/subscriptions/invalid",
    requirements=["AWP-SUB-001", "AWP-ERR-020"],
)
async def invalid(ctx: HostContext) -> None:
    """Procedure: add subscriptions with no id, with no rule, with an empty topic type, with an
    empty prefix and with an empty agent type.

    Asserts: each fails with INVALID_ARGUMENT and none is listed."""
    agent_type = ctx.unique("inv")
    worker = await ctx.serving("a", agent_type)
    topic = ctx.unique("topic")
    bad = {
        "no id": type_subscription("", topic, agent_type),
        "no rule": pb.Subscription(id=ctx.unique("norule")),
        "empty topic type": type_subscription(ctx.unique("s"), "", agent_type),
        "empty prefix": prefix_subscription(ctx.unique("s"), "", agent_type),
        "empty agent type": type_subscription(ctx.unique("s"), topic, ""),
    }
    for what, sub in bad.items():
        ctx.check_status(
            await worker.add_subscription_status(sub),
            grpc.StatusCode.INVALID_ARGUMENT,
            what,
            step=(("AWP-SUB-001", "AWP-ERR-020"), f"{what}: INVALID_ARGUMENT"),
        )
    with ctx.step("AWP-SUB-001", "no invalid subscription is stored"):
        ids = {s.id for s in bad.values() if s.id}
        listed = await _ids(worker, ids)
        ctx.check(not listed, f"invalid subscriptions were stored: {listed}")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """Encode a length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _reordered(sub: pb.Subscription) -> bytes:
    """Return an AddSubscriptionRequest for the TypeSubscription ``sub`` with every field
    written in reverse order: other bytes than the usual encoding, the same fields."""
    rule = sub.type_subscription
    body = _field(2, rule.agent_type.encode()) + _field(1, rule.topic_type.encode())
    encoded = _field(1, _field(2, body) + _field(1, sub.id.encode()))
    assert pb.AddSubscriptionRequest.FromString(encoded).subscription == sub
    assert encoded != pb.AddSubscriptionRequest(subscription=sub).SerializeToString()
    return encoded


@host_case(
    "host/subscriptions/conflicts",
    requirements=["AWP-SUB-002", "AWP-SUB-004", "AWP-CONN-022"],
)
async def conflicts(ctx: HostContext) -> None:
    """Procedure: worker A adds S, a TypeSubscription; A adds S again, its fields encoded in
    reverse order (other bytes, the same fields); A adds S's id with another topic type, with
    another agent type, and as a TypePrefixSubscription with S's topic type and agent type;
    worker B adds S exactly; B removes S; B removes an unknown id.

    Asserts: OK (content is compared field by field, not as bytes), then ALREADY_EXISTS three
    times (each differs from S in one field), ALREADY_EXISTS, PERMISSION_DENIED, NOT_FOUND;
    S is still listed with its original content."""
    type_a = ctx.unique("a")
    type_b = ctx.unique("b")
    a = await ctx.serving("a", type_a)
    b = await ctx.serving("b", type_b)
    topic = ctx.unique("topic")
    sub = type_subscription(ctx.unique("s"), topic, type_a)
    await a.subscribe(sub)
    code, details, _ = await a.unary("AddSubscription", _reordered(sub), pb.AddSubscriptionResponse)
    ctx.check_status(
        (code, details),
        grpc.StatusCode.OK,
        "same fields in another encoding",
        step=(("AWP-SUB-002", "AWP-CONN-022"), "same fields, other bytes: OK"),
    )
    differing = {
        "topic type": type_subscription(sub.id, ctx.unique("other"), type_a),
        "agent type": type_subscription(sub.id, topic, type_b),
        "rule case": prefix_subscription(sub.id, topic, type_a),
    }
    for what, changed in differing.items():
        ctx.check_status(
            await a.add_subscription_status(changed),
            grpc.StatusCode.ALREADY_EXISTS,
            f"same id, another {what}",
            step=("AWP-SUB-002", f"same id, another {what}: ALREADY_EXISTS"),
        )
    ctx.check_status(
        await b.add_subscription_status(sub),
        grpc.StatusCode.ALREADY_EXISTS,
        "id of another client",
        step=("AWP-SUB-002", "another client's id: ALREADY_EXISTS"),
    )
    ctx.check_status(
        await b.remove_subscription_status(sub.id),
        grpc.StatusCode.PERMISSION_DENIED,
        "removing another client's subscription",
        step=("AWP-SUB-004", "removing another client's subscription: PERMISSION_DENIED"),
    )
    ctx.check_status(
        await b.remove_subscription_status(ctx.unique("unknown")),
        grpc.StatusCode.NOT_FOUND,
        "removing an unknown id",
        step=("AWP-SUB-004", "removing an unknown id: NOT_FOUND"),
    )
    with ctx.step(("AWP-SUB-002", "AWP-SUB-004"), "S is still listed unchanged"):
        listed = [s for s in await a.subscriptions() if s.id == sub.id]
        ctx.check(listed == [sub], f"S is listed as {listed}")


@host_case(
    "host/subscriptions/cleanup-on-disconnect",
    requirements=["AWP-SUB-005", "AWP-CONN-018"],
)
async def cleanup_on_disconnect(ctx: HostContext) -> None:
    """Procedure: worker A registers type T and adds subscription S; A's data channel is
    cancelled; an observer polls GetSubscriptions; worker B registers T; a caller sends a
    request to T.

    Asserts: S disappears within 2 s; B's registration succeeds; the request reaches B."""
    agent_type = ctx.unique("gone")
    a = await ctx.serving("a", agent_type)
    sub = type_subscription(ctx.unique("s"), ctx.unique("topic"), agent_type)
    await a.subscribe(sub)
    await a.disconnect()
    observer = await ctx.connect("observer")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(2.0)
    with ctx.step(("AWP-SUB-005", "AWP-CONN-018"), "the subscription is removed"):
        while await _ids(observer, {sub.id}):
            ctx.check(
                loop.time() < deadline, "the subscription is still listed 2 s after disconnect"
            )
            await asyncio.sleep(0.05)
    b = await ctx.connect("b")
    with ctx.step("AWP-CONN-018", "the registration is removed: B registers T", gate=True):
        while True:
            code, details = await b.register_status(agent_type)
            if code is grpc.StatusCode.OK:
                break
            ctx.check(
                loop.time() < deadline,
                f"B cannot register T 2 s after A disconnected: {code.name} {details!r}",
            )
            await asyncio.sleep(0.05)
    with ctx.step("AWP-CONN-018", "a request to T reaches B"):
        await observer.request(rpc_request("r1", agent_type, "k", "hi"))
        await b.expect_request("the request, at the new registrant")
