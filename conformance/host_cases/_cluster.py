"""Host cases for host clusters (spec 18): they need the addresses of two or more nodes."""

from __future__ import annotations

import asyncio
import itertools

import grpc
from grpc_health.v1 import health_pb2

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


async def _health_status(ctx: HostContext, address: str) -> int | None:
    """Return the node's Health/Check("") status, or None when the call failed."""
    probe = ctx.worker("health", address=address)
    try:
        code, _, response = await probe.unary(
            "",
            health_pb2.HealthCheckRequest(service=""),
            health_pb2.HealthCheckResponse,
            path="/grpc.health.v1.Health/Check",
        )
    finally:
        await probe.close()
        ctx.workers.remove(probe)
    return response.status if code is grpc.StatusCode.OK and response is not None else None


def _is_shutting_down(frame: pb.OpenChannelResponse) -> bool:
    return bool(
        frame.WhichOneof("message") == "notice" and frame.notice.code == pb.ERROR_CODE_SHUTTING_DOWN
    )


@host_case(
    "host/cluster/cut-off",
    requirements=["AWP-CLU-017", "AWP-CLU-012", "AWP-CLU-018"],
    v1_only=True,
)
async def cut_off(ctx: HostContext) -> None:
    """Needs --node-fault-command (actions cut and restore) and --node-lease-ms L. Bound:
    B = L plus max(L / 2, 1 s), times --timeout-scale, counted from the moment the cut
    command returned (the node's last lease renewal that succeeded was sent before).

    Procedure: on the first node, R registers type U and subscribes U to topic X; on the last
    node, Q registers type W and subscribes W to X, and V registers a type of its own. V
    publishes E0 on X (R and Q receive it). The harness silences the last node's connection
    to the shared state (`cut`). The harness polls the node's health and V's channel until
    either shows the node stopped serving; then V calls U, calls RegisterAgent, a new worker
    opens a data channel on the node, and V publishes E1 on X. The harness restores the
    connection (also when a check failed), waits until the node's health is SERVING again,
    and V publishes E2 on X.

    Asserts: (AWP-CLU-017) within B of the cut the node reports NOT_SERVING or sends V a
    SHUTTING_DOWN notice; (AWP-CLU-012) it does both, answers V's call with SHUTTING_DOWN and
    fails RegisterAgent and OpenChannel with UNAVAILABLE; (AWP-CLU-018) R receives E2 and
    neither R nor Q receives E1."""
    live_node, _, cut_node = _loss_nodes(ctx)
    fault = ctx.require_node_fault()
    bound = fault.lease_s + max(fault.lease_s / 2, 1.0)
    loop = asyncio.get_running_loop()
    topic, live_type, near_type = ctx.unique("cut.topic"), ctx.unique("far"), ctx.unique("near")
    receiver = await _open(ctx, "r", live_node)
    await receiver.register(live_type)
    await receiver.subscribe(type_subscription(ctx.unique("sub"), topic, live_type))
    neighbour = await _open(ctx, "q", cut_node)
    await neighbour.register(near_type)
    await neighbour.subscribe(type_subscription(ctx.unique("sub"), topic, near_type))
    publisher = await _open(ctx, "v", cut_node)
    await publisher.register(ctx.unique("own"))
    e0 = event(topic, "k", "before the cut")
    await publisher.publish(e0)
    await receiver.data.expect("E0 from the node before the cut", event_with_id(e0.id))
    await neighbour.data.expect("E0 from its own node before the cut", event_with_id(e0.id))
    e1 = event(topic, "k", "while cut off")
    await ctx.act_on_node("cut", cut_node)
    try:
        cut_at = loop.time()
        limit = cut_at + ctx.seconds(bound)
        async with ctx.step("AWP-CLU-017", "the silenced node stops serving within L", gate=True):
            status = await _health_status(ctx, cut_node)
            while status != health_pb2.HealthCheckResponse.NOT_SERVING and not any(
                _is_shutting_down(f) for f in publisher.data.peek()
            ):
                ctx.check(
                    loop.time() < limit,
                    f"{bound:.1f} s after its connection to the shared state fell silent, the "
                    "node still reports SERVING and sent V no SHUTTING_DOWN notice",
                )
                await asyncio.sleep(_POLL_S)
                status = await _health_status(ctx, cut_node)
        async with ctx.step("AWP-CLU-012", "the cut-off node sends V a SHUTTING_DOWN notice"):
            await publisher.data.expect("a SHUTTING_DOWN notice", _is_shutting_down, bound)
        async with ctx.step("AWP-CLU-012", "the cut-off node reports NOT_SERVING"):
            status = await _health_status(ctx, cut_node)
            names = health_pb2.HealthCheckResponse.ServingStatus
            ctx.check(
                status == health_pb2.HealthCheckResponse.NOT_SERVING,
                f"Health/Check on the cut-off node: "
                f"{'failed' if status is None else names.Name(status)}",
            )
        async with ctx.step("AWP-CLU-012", "the cut-off node answers a new call SHUTTING_DOWN"):
            call = rpc_request("while-cut", live_type, "k", "x", timeout_ms=_CALL_DEADLINE_MS)
            await publisher.request(call)
            answer = await publisher.expect_response(call.request_id, bound)
            ctx.check(
                answer.error_code == pb.ERROR_CODE_SHUTTING_DOWN,
                f"a call from the cut-off node: error_code "
                f"{pb.ErrorCode.Name(answer.error_code)} ({answer.error!r})",
            )
        with ctx.step("AWP-CLU-012", "the cut-off node fails RegisterAgent with UNAVAILABLE"):
            ctx.check_status(
                await publisher.register_status(ctx.unique("late")),
                grpc.StatusCode.UNAVAILABLE,
                "RegisterAgent on the cut-off node",
            )
        async with ctx.step("AWP-CLU-012", "the cut-off node fails OpenChannel with UNAVAILABLE"):
            late = ctx.worker("late", address=cut_node)
            await late.open()
            code = await late.data.wait_end(bound)
            ctx.check(
                code is grpc.StatusCode.UNAVAILABLE,
                f"OpenChannel on the cut-off node: {code.name if code else 'an open channel'}",
            )
        await publisher.publish(e1)
    finally:
        await ctx.act_on_node("restore", cut_node)
    # The node must serve again before V publishes E2 and before the later cases.
    serving_by = loop.time() + ctx.seconds(4 * fault.lease_s + 10)
    while await _health_status(ctx, cut_node) != health_pb2.HealthCheckResponse.SERVING:
        if loop.time() > serving_by:
            raise CaseFailure(
                "the node did not report SERVING again after its connection to the shared "
                "state was restored (the later checks need it)"
            )
        await asyncio.sleep(_POLL_S)
    e2 = event(topic, "k", "after the restore")
    await publisher.publish(e2)
    async with ctx.step("AWP-CLU-018", "an event published while cut off reaches no worker"):
        await receiver.data.expect("E2, published after the restore", event_with_id(e2.id))
        for worker in (receiver, neighbour):
            got = [f for f in worker.data.take_all() if event_with_id(e1.id)(f)]
            ctx.check(not got, f"{worker.label} received E1, published while the node was cut off")
