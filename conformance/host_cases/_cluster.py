"""Host cases for host clusters (spec 18): they need the addresses of two or more nodes."""

from __future__ import annotations

import asyncio
import itertools

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, json_payload, rpc_request, type_subscription
from conformance._cases import CaseFailure, CaseSkip, SkipReason
from conformance._host_context import HostContext
from conformance._predicates import event_with_id
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []


def _nodes(ctx: HostContext) -> tuple[str, str]:
    if len(ctx.addresses) < 2:
        raise CaseSkip(SkipReason.NOT_APPLICABLE, "needs the addresses of two or more nodes")
    return ctx.addresses[0], ctx.addresses[1]


async def _open(ctx: HostContext, label: str, address: str) -> RawWorker:
    worker = ctx.worker(label, address=address)
    await worker.open()
    return worker


@host_case("host/cluster/read-your-writes", requirements=["AWP-CLU-006", "AWP-CLU-001"])
async def read_your_writes(ctx: HostContext) -> None:
    """Procedure: on node 1, worker S registers type T and subscribes T to topic X; as soon as
    AddSubscription returns, P on node 2 publishes event E1 on X and calls T. S removes the
    subscription; as soon as RemoveSubscription returns, P publishes E2 on X, then E3 on a
    topic S still subscribes to.

    Asserts: S receives E1 and the call; it receives E3 and not E2."""
    first, second = _nodes(ctx)
    agent_type = ctx.unique("ryw")
    topic, marker = ctx.unique("ryw.topic"), ctx.unique("ryw.marker")
    subscriber = await _open(ctx, "s", first)
    publisher = await _open(ctx, "p", second)
    await subscriber.register(agent_type)
    sub_id = ctx.unique("sub")
    await subscriber.subscribe(type_subscription(sub_id, topic, agent_type))
    await subscriber.subscribe(type_subscription(ctx.unique("sub"), marker, agent_type))
    e1 = event(topic, "k", "e1")
    await publisher.publish(e1)
    await subscriber.data.expect("E1 published on another node", event_with_id(e1.id))
    await publisher.request(rpc_request("r1", agent_type, "k", "x", timeout_ms=10_000))
    await subscriber.expect_request("the call from another node")
    ctx.check_status(
        await subscriber.remove_subscription_status(sub_id),
        grpc.StatusCode.OK,
        "RemoveSubscription",
    )
    e2, e3 = event(topic, "k", "e2"), event(marker, "k", "e3")
    await publisher.publish(e2)
    await publisher.publish(e3)
    await subscriber.data.expect("E3", event_with_id(e3.id))
    ctx.check(
        not any(
            f.WhichOneof("message") == "cloud_event" and f.cloud_event.id == e2.id
            for f in subscriber.data.take_all()
        ),
        "E2 was delivered after RemoveSubscription returned",
    )


@host_case("host/cluster/client-id-unique", requirements=["AWP-CLU-005"])
async def client_id_unique(ctx: HostContext) -> None:
    """Procedure: open a data channel for client-id C on node 1, then one for C on node 2.

    Asserts: the second ends with ALREADY_EXISTS and the first stays open."""
    first, second = _nodes(ctx)
    original = await _open(ctx, "first", first)
    duplicate = ctx.worker("second", address=second, client_id=original.client_id)
    await duplicate.open()
    code = await duplicate.data.wait_end()
    ctx.check(
        code is grpc.StatusCode.ALREADY_EXISTS,
        f"second OpenChannel on another node: expected ALREADY_EXISTS, got "
        f"{code.name if code else 'an open channel'}",
    )
    ctx.check(not original.data.ended, "the first channel ended")


# A call's deadline far beyond every bound below: an answer within them is not the deadline's.
_CALL_DEADLINE_MS = 60_000
# Events the publisher sends in each phase: before the kill, before the cluster notices it,
# right after, and once the lost node's routes are gone.
_BATCH = 20
# How long the harness waits between attempts of a poll (nominal seconds).
_POLL_S = 0.1


def _loss_nodes(ctx: HostContext) -> tuple[str, str, str]:
    """Return (caller's node, receiver's node, node to kill): the last node is killed, so the
    first stays up; with 3 or more nodes the caller and the receiver sit on different nodes."""
    addresses = ctx.addresses
    if len(addresses) < 2:
        raise CaseSkip(SkipReason.NOT_APPLICABLE, "needs the addresses of two or more nodes")
    receiver = addresses[1] if len(addresses) >= 3 else addresses[0]
    return addresses[0], receiver, addresses[-1]


async def _events(worker: RawWorker, count: int, within: float) -> list[str]:
    """Return the ids of the events ``worker`` receives, in order, until ``count`` arrived or
    ``within`` seconds (nominal) passed; then any extra event that arrives meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within * worker.scale
    ids: list[str] = []
    while len(ids) < count:
        remaining = (deadline - loop.time()) / worker.scale
        if remaining <= 0:
            break
        try:
            ids.append((await worker.expect_event("a streamed event", remaining)).id)
        except CaseFailure:
            break
    extra = await worker.data.settle()
    ids += [f.cloud_event.id for f in extra if f.WhichOneof("message") == "cloud_event"]
    return ids


@host_case(
    "host/cluster/node-loss",
    requirements=["AWP-CLU-009", "AWP-CLU-010", "AWP-CLU-011"],
    v1_only=True,
)
async def node_loss(ctx: HostContext) -> None:
    """Needs --node-fault-command and --node-lease-ms L. Bound: B = 2 x L (the spec's) plus
    max(L / 2, 1 s) for the harness's own latency, times --timeout-scale, counted from the
    moment the kill command returned (the node was lost by then).

    Procedure: on the last node, worker V registers type T, subscribes T to topic X and never
    answers. On the first node, P; on the second (the first with 2 nodes), R, which registers
    type U and subscribes U to X. P calls T (deadline 60 s; V receives it) and U (R holds it).
    P publishes 20 numbered events on X, the harness kills V's node, P publishes 20 more. Then
    P waits for its call to T; P publishes 20 more; P calls T again until the call is answered
    with UNKNOWN_TARGET, and a worker on the first node opens a data channel with V's
    client-id until it is accepted; P publishes 20 more; R answers P's call. Finally the
    harness starts the node again and waits until it serves (also when a check failed).

    Asserts: (AWP-CLU-009) P's call to T ends with TARGET_UNAVAILABLE within B, not at its
    deadline; (AWP-CLU-010) within B of the kill a new call to T gets UNKNOWN_TARGET and a
    channel with V's client-id on a live node is accepted; (AWP-CLU-011) R receives the 80
    events exactly once and in order, and P's call to U succeeds."""
    caller_node, receiver_node, lost_node = _loss_nodes(ctx)
    fault = ctx.require_node_fault()
    bound = 2 * fault.lease_s + max(fault.lease_s / 2, 1.0)
    loop = asyncio.get_running_loop()
    agent_type, live_type = ctx.unique("lost"), ctx.unique("live")
    topic = ctx.unique("loss.topic")
    doomed = await _open(ctx, "v", lost_node)
    await doomed.register(agent_type)
    await doomed.subscribe(type_subscription(ctx.unique("sub"), topic, agent_type))
    receiver = await _open(ctx, "r", receiver_node)
    await receiver.register(live_type)
    await receiver.subscribe(type_subscription(ctx.unique("sub"), topic, live_type))
    receiver.data.trace_frames = False
    caller = await _open(ctx, "p", caller_node)
    held = rpc_request("held", agent_type, "k", "never answered", timeout_ms=_CALL_DEADLINE_MS)
    await caller.request(held)
    await doomed.expect_request("the call held by the worker on the node to be lost")
    across = rpc_request("across", live_type, "k", "across the loss", timeout_ms=_CALL_DEADLINE_MS)
    await caller.request(across)
    live_call = await receiver.expect_request("the call between live nodes")
    sent: list[str] = []

    async def publish_batch() -> None:
        for _ in range(_BATCH):
            published = event(topic, "k", f"e{len(sent)}")
            sent.append(published.id)
            await caller.publish(published)

    await publish_batch()
    await ctx.act_on_node("kill", lost_node)
    try:
        lost_at = loop.time()
        limit = lost_at + ctx.seconds(bound)

        def remaining() -> float:
            """Nominal seconds left of the bound (the streams scale them)."""
            return max((limit - loop.time()) / ctx.scale, 0.05)

        await publish_batch()
        async with ctx.step(
            "AWP-CLU-009", "a call held by a worker on the lost node ends with TARGET_UNAVAILABLE"
        ):
            response = await caller.expect_response(held.request_id, remaining())
            took = loop.time() - lost_at
            ctx.check(
                response.error_code == pb.ERROR_CODE_TARGET_UNAVAILABLE,
                f"the call held at the lost node ended with error_code "
                f"{pb.ErrorCode.Name(response.error_code)} ({response.error!r}) after {took:.1f} s",
            )
            ctx.check(took <= ctx.seconds(bound), f"it ended {took:.1f} s after the loss")
        await publish_batch()
        async with ctx.step(
            "AWP-CLU-010", "a new call to the lost worker's type gets UNKNOWN_TARGET"
        ):
            for attempt in itertools.count(1):
                probe = rpc_request(f"probe-{attempt}", agent_type, "k", "after the loss",
                                    timeout_ms=_CALL_DEADLINE_MS)  # fmt: skip
                await caller.request(probe)
                answer = await caller.expect_response(probe.request_id, remaining())
                if answer.error_code == pb.ERROR_CODE_UNKNOWN_TARGET:
                    break
                ctx.check(
                    loop.time() < limit,
                    f"a call to the lost worker's type {bound:.1f} s after the loss got "
                    f"error_code {pb.ErrorCode.Name(answer.error_code)} ({answer.error!r}), "
                    "not UNKNOWN_TARGET",
                )
                await asyncio.sleep(_POLL_S)
        async with ctx.step(
            "AWP-CLU-010", "a channel with the lost worker's client-id opens on a live node"
        ):
            while True:
                again = ctx.worker("v-again", address=caller_node, client_id=doomed.client_id)
                await again.open(welcome_timeout=remaining())
                if again.welcome is not None and not again.data.ended:
                    break
                code = await again.data.wait_end(remaining())
                await again.close()
                ctx.check(
                    loop.time() < limit,
                    f"OpenChannel with the lost worker's client-id on a live node "
                    f"{bound:.1f} s after the loss: {code.name if code else 'no welcome'} "
                    f"{again.data.end_details!r}",
                )
                await asyncio.sleep(_POLL_S)
        await publish_batch()
        await receiver.respond(
            pb.RpcResponse(request_id=live_call.request_id, payload=json_payload("Note", "ok"))
        )
        async with ctx.step(
            "AWP-CLU-011", "a call between workers on live nodes succeeds across the loss"
        ):
            answer = await caller.expect_response(across.request_id, 10.0)
            ctx.check(
                not answer.error and answer.error_code == pb.ERROR_CODE_UNSPECIFIED,
                f"the call between live nodes failed: "
                f"{pb.ErrorCode.Name(answer.error_code)} {answer.error!r}",
            )
        async with ctx.step(
            "AWP-CLU-011", "events between live nodes arrive exactly once, in order"
        ):
            got = await _events(receiver, len(sent), 10.0)
            missing = [i for i, e in enumerate(sent) if e not in got]
            repeated = len(got) - len(set(got))
            ctx.check(
                got == sent,
                f"R received {len(got)} of the {len(sent)} events P published across the loss: "
                f"missing numbers {missing[:10]}, {repeated} duplicates, "
                f"{'in' if sorted(got, key=sent.index) == got else 'out of'} order"
                if set(got) <= set(sent)
                else f"R received events P did not publish: {set(got) - set(sent)}",
            )
    finally:
        await ctx.act_on_node("start", lost_node)
