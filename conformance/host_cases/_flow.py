"""Host cases: bounded queues and slow consumers."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, rpc_request, type_subscription
from conformance._host_context import HostContext
from conformance._predicates import is_event
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []

_MAX_EVENTS = 40_000  # ~40 MB: a host that never pushes back fails well before this
_FILLER = "x" * 1000
# Requests to a stalled target before the case gives up: the target's queue (RECOMMENDED
# 10,000 frames) plus what gRPC buffers between host and target, with room to spare.
_MAX_REQUESTS = 60_000
# Long enough that no deadline answers a request before the queue fills.
_REQUEST_TIMEOUT_MS = 300_000


@host_case(
    "host/flow/slow-consumer",
    requirements=["AWP-FLOW-003", "AWP-FLOW-001", "AWP-CONN-018"],
)
async def slow_consumer(ctx: HostContext) -> None:
    """Procedure: workers S (slow) and F (fast) each serve a type subscribed to topic X. S
    stops reading its channel. Publisher P publishes 1 kB events on X as fast as the host
    reads them, until its writes have been blocked for 2 s (backpressure), then stops. The harness
    waits until P's last write completes, then S reads again.

    Asserts: within 30 s of blocking P the host releases it; F receives every event P
    published, in order; S's channel ends with RESOURCE_EXHAUSTED (before P has published
    40,000 events: bounded memory) after the events it received, in order without
    duplicates; S's agent type can then be registered by another worker."""
    topic = ctx.unique("flow")
    slow_type, fast_type = ctx.unique("slow"), ctx.unique("fast")
    slow = await ctx.serving("s", slow_type)
    fast = await ctx.serving("f", fast_type)
    await slow.subscribe(type_subscription(ctx.unique("sub"), topic, slow_type))
    await fast.subscribe(type_subscription(ctx.unique("sub"), topic, fast_type))
    publisher = await ctx.connect("p")
    for worker in (slow, fast, publisher):
        worker.data.trace_frames = False
    slow.data.pause()
    state = {"sent": 0, "stop": False}

    async def pump() -> None:
        while not state["stop"] and state["sent"] < _MAX_EVENTS:
            n = state["sent"]
            await publisher.publish(event(topic, "k", _FILLER, event_id=f"{ctx.run_id}-{n}"))
            state["sent"] = n + 1

    task = asyncio.ensure_future(pump())
    try:
        blocked = await _wait_for_backpressure(ctx, task, state)
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    state["stop"] = True
    if blocked:
        ctx.trace.note("p", f"blocked after {state['sent']} events; stops publishing")
    else:
        ctx.trace.note("p", f"published {state['sent']} events without being blocked for 2 s")
    try:
        await asyncio.wait_for(task, ctx.seconds(30.0))
    except TimeoutError:
        task.cancel()
        ctx.check(
            False, "P stayed blocked for 30 s: the slow consumer was never ended (AWP-FLOW-003)"
        )
    total = state["sent"]
    ctx.trace.note("p", f"released after {total} events")
    ids = [f"{ctx.run_id}-{n}" for n in range(total)]
    got = await _collect_events(ctx, fast, total)
    ctx.decide(
        "AWP-FLOW-001",
        "F receives every event, in order",
        got == ids,
        f"F received {len(got)} events for {total} published, or out of order",
    )
    slow.data.resume()
    code = await slow.data.wait_end(within=10.0)
    ctx.check(
        code is grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"S's channel: expected RESOURCE_EXHAUSTED, got {code.name if code else 'still open'} "
        "(AWP-FLOW-003)",
    )
    received = [f.cloud_event.id for f in slow.data.take_all() if is_event(f)]
    positions = [int(i.rsplit("-", 1)[1]) for i in received]
    ctx.check(
        positions == sorted(set(positions)),
        "S received events out of order or twice (AWP-FLOW-001)",
    )
    ctx.trace.note("s", f"received {len(received)} of {total} events before it was ended")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(2.0)
    with ctx.step("AWP-CONN-018", "S's registration is removed once it is ended"):
        while (result := await publisher.register_status(slow_type))[0] is not grpc.StatusCode.OK:
            ctx.check(loop.time() < deadline, f"S's type is still registered: {result}")
            await asyncio.sleep(0.05)


async def _wait_for_backpressure(
    ctx: HostContext, task: asyncio.Future[None], state: dict[str, int | bool]
) -> bool:
    """Return True once P's writes have made no progress for 2 s (scaled, so that a busy
    machine is not mistaken for backpressure), False when P published every event (a host
    with a short slow-consumer timeout may end S before P stalls that long; S's end status
    then tells)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(60.0)
    last, since = -1, loop.time()
    while True:
        await asyncio.sleep(0.1)
        if task.done():
            task.result()  # a write error fails the case
            return False
        now = loop.time()
        if state["sent"] != last:
            last, since = int(state["sent"]), now
        elif now - since >= ctx.seconds(2.0):
            return True
        ctx.check(now < deadline, "P kept publishing slowly for 60 s without being blocked")


async def _collect_events(ctx: HostContext, worker: RawWorker, count: int) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(30.0)
    ids: list[str] = []
    while len(ids) < count and loop.time() < deadline:
        ids += [f.cloud_event.id for f in worker.data.take_all() if is_event(f)]
        if len(ids) < count:
            await asyncio.sleep(0.05)
    return ids


@host_case(
    "host/flow/overloaded",
    requirements=["AWP-FLOW-002", "AWP-FLOW-001"],
)
async def overloaded(ctx: HostContext) -> None:
    """Procedure: worker T serves a type and stops reading its channel. Caller C sends T 1 kB
    requests (timeout 300 s, unique ids) as fast as the host reads them, watching its own
    channel, and stops at the first response.

    Asserts: before C has sent 60,000 requests (bounded memory), C receives an error response
    for one of them (ERROR_CODE_OVERLOADED on v1 runs), within 30 s of starting, long before
    any deadline; no request is answered otherwise first."""
    target_type = ctx.unique("stalled")
    target = await ctx.serving("t", target_type)
    caller = await ctx.connect("c")
    for worker in (target, caller):
        worker.data.trace_frames = False
    target.data.pause()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(30.0)
    sent = 0
    answer: pb.RpcResponse | None = None
    while answer is None:
        for _ in range(200):
            await caller.request(
                rpc_request(
                    f"{ctx.run_id}-{sent}",
                    target_type,
                    "k",
                    _FILLER,
                    timeout_ms=_REQUEST_TIMEOUT_MS,
                )
            )
            sent += 1
        answers = [f.response for f in caller.data.take_all() if f.HasField("response")]
        if answers:
            answer = answers[0]
            break
        # A host with an unbounded queue never answers: both requirements fail here.
        ctx.check(
            sent < _MAX_REQUESTS,
            f"no response after {sent} requests to a stalled worker (AWP-FLOW-002, AWP-FLOW-001)",
        )
        ctx.check(
            loop.time() < deadline,
            f"no response within 30 s ({sent} requests sent) (AWP-FLOW-002, AWP-FLOW-001)",
        )
    ctx.trace.note("c", f"first response after {sent} requests: {answer}")
    ctx.check_error(answer, pb.ERROR_CODE_OVERLOADED, "the first response", "AWP-FLOW-002")
    ctx.check(
        answer.request_id.startswith(f"{ctx.run_id}-"),
        f"the response names request {answer.request_id!r}, which C did not send (AWP-FLOW-002)",
    )
