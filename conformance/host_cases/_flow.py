"""Host cases: bounded queues and slow consumers."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, rpc_request, type_subscription
from conformance._host_context import DEFAULT, HostContext
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
    requirements=["AWP-FLOW-003", "AWP-FLOW-001", "AWP-CONN-018", "AWP-FLOW-021"],
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
    blocked = await _wait_for_backpressure(ctx, task, state)
    state["stop"] = True
    if blocked:
        ctx.trace.note("p", f"blocked after {state['sent']} events; stops publishing")
    else:
        ctx.trace.note("p", f"published {state['sent']} events without being blocked for 2 s")
    # The bounds of AWP-FLOW-021 (slow-consumer timeout at most 20 s) release P within 30 s.
    with ctx.step("AWP-FLOW-021", "P is released within 30 s", gate=True):
        try:
            await asyncio.wait_for(task, ctx.seconds(30.0))
        except TimeoutError:
            task.cancel()
            ctx.check(False, "P stayed blocked for 30 s: the slow consumer was not ended in time")
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
    then tells). ``task`` (the writer) is cancelled if this fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(60.0)
    last, since = -1, loop.time()
    try:
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
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise


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


# Requests a case sends before it expects the host to stop reading a caller that does not read
# (queue limit plus calls-in-flight limit, both RECOMMENDED 10,000, plus gRPC's buffers).
_MAX_UNREAD_REQUESTS = 60_000
# A calls-in-flight limit this case exercises at most (it sends that many requests).
_MAX_LIMIT_EXERCISED = 50_000


@host_case(
    "host/flow/calls-in-flight-limit",
    requirements=["AWP-FLOW-005", "AWP-ERR-004", "AWP-FLOW-009"],
    v1_only=True,
)
async def calls_in_flight_limit(ctx: HostContext) -> None:
    """Procedure: caller C reads the welcome's max_calls_in_flight F. Worker T serves a type,
    reads every frame and answers none. C sends T F requests (timeout 300 s) in slices of 500
    (Batch frames when batching is in force), each sent once T has received the previous ones
    (T's queue never fills), then one more request.
    Then worker B connects, T disconnects, and B calls GetSubscriptions again and again until
    C has every answer.

    Asserts: the welcome states F > 0; the extra request is answered at once with
    ERROR_CODE_OVERLOADED; T receives exactly F requests; after T leaves, within 30 s each of
    the F requests gets exactly one ERROR_CODE_TARGET_UNAVAILABLE and the extra one no second
    answer; meanwhile each of B's calls is answered within 5 s (answering many pending calls
    does not stall the host)."""
    ctx.require_v1("the calls-in-flight limit is announced in the welcome")
    caller = await ctx.connect("c", hello=ctx.hello((pb.CAPABILITY_BATCHING,)))
    welcome = caller.welcome
    ctx.check(welcome is not None, "C received no welcome")
    assert welcome is not None
    limit = welcome.max_calls_in_flight
    ctx.check(limit > 0, "the welcome does not state max_calls_in_flight")
    ctx.check(limit <= _MAX_LIMIT_EXERCISED, f"max_calls_in_flight {limit} is too large to test")
    target_type = ctx.unique("holder")
    target = await ctx.serving("t", target_type)
    for worker in (target, caller):
        worker.data.trace_frames = False
    received: list[str] = []
    step = 500
    for start in range(0, limit, step):
        requests = [
            rpc_request(f"{ctx.run_id}-{n}", target_type, "k", "x", timeout_ms=300_000)
            for n in range(start, min(limit, start + step))
        ]
        await _send_requests(caller, requests)
        await _collect_requests(ctx, target, received, min(limit, start + step))
    ctx.trace.note("t", f"received {len(received)} requests; C sends one more")
    extra = f"{ctx.run_id}-extra"
    await caller.request(rpc_request(extra, target_type, "k", "x", timeout_ms=300_000))
    with ctx.step(("AWP-FLOW-005", "AWP-ERR-004"), "the request past the limit is answered"):
        answer = await caller.expect_response(extra, within=10.0)
        ctx.check_error(
            answer, pb.ERROR_CODE_OVERLOADED, "the request past the limit", "AWP-FLOW-005"
        )
    ctx.decide(
        "AWP-FLOW-005",
        "T receives exactly the limit's requests",
        len(received) == limit,
        f"T received {len(received)} requests, expected {limit}",
    )
    bystander = await ctx.connect("b")
    await target.disconnect()
    codes: dict[str, int] = {}
    repeated: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + ctx.seconds(30.0)
    # The bystander's calls while the host answers: none may wait for all the answers.
    stalls: list[float] = []
    while len(codes) < limit and loop.time() < deadline:
        asked = loop.time()
        await bystander.unary(
            "GetSubscriptions", pb.GetSubscriptionsRequest(), pb.GetSubscriptionsResponse,
            within=max(0.1, deadline - asked) / ctx.scale,
        )  # fmt: skip
        stalls.append(loop.time() - asked)
        for frame in caller.data.take_all():
            if frame.HasField("response"):
                response = frame.response
                if response.request_id in codes or response.request_id == extra:
                    repeated.append(response.request_id)
                codes[response.request_id] = response.error_code
        await asyncio.sleep(0.05)
    ctx.trace.note("c", f"{len(codes)} answers in {loop.time() - started:.1f} s")
    ctx.decide(
        ("AWP-FLOW-009", "AWP-ERR-004"),
        "every pending request is answered within 30 s of T leaving",
        len(codes) == limit,
        f"{len(codes)} of {limit} pending requests were answered within 30 s",
    )
    longest = max(stalls, default=0.0)
    ctx.decide(
        "AWP-FLOW-009",
        "the host serves another connection while it answers them",
        longest <= ctx.seconds(5.0),
        f"a GetSubscriptions call of another client took {longest:.1f} s while the host "
        "answered the calls pending at T",
    )
    ctx.decide(
        "AWP-ERR-004",
        "no request is answered twice",
        not repeated,
        f"{len(repeated)} requests were answered twice, the first {repeated[:3]}",
    )
    wrong = {rid: code for rid, code in codes.items() if code != pb.ERROR_CODE_TARGET_UNAVAILABLE}
    ctx.decide(
        "AWP-ERR-004",
        "each is answered with ERROR_CODE_TARGET_UNAVAILABLE",
        not wrong,
        f"{len(wrong)} requests ended otherwise than TARGET_UNAVAILABLE",
    )


async def _send_requests(worker: RawWorker, requests: list[pb.RpcRequest]) -> None:
    """Send ``requests`` in one Batch frame when batching is in force, else one by one."""
    welcome = worker.welcome
    if welcome is not None and pb.CAPABILITY_BATCHING in welcome.capabilities:
        limit = welcome.max_batch_messages or 1024
        for start in range(0, len(requests), limit):
            batch = pb.OpenChannelRequest.Batch(
                messages=[pb.OpenChannelRequest(request=r) for r in requests[start : start + limit]]
            )
            await worker.send(pb.OpenChannelRequest(batch=batch))
        return
    for request in requests:
        await worker.request(request)


async def _collect_requests(
    ctx: HostContext, worker: RawWorker, received: list[str], count: int
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(30.0)
    while len(received) < count:
        received += [f.request.request_id for f in worker.data.take_all() if f.HasField("request")]
        if len(received) >= count:
            return
        ctx.check(loop.time() < deadline, f"T received {len(received)} of {count} requests")
        await asyncio.sleep(0.02)


@host_case(
    "host/flow/owed-errors",
    requirements=["AWP-FLOW-007", "AWP-FLOW-008", "AWP-ERR-004", "AWP-FLOW-001"],
)
async def owed_errors(ctx: HostContext) -> None:
    """Procedure: worker T serves a type, reads every frame and answers none. Caller C stops
    reading its channel and sends T requests with timeout_ms=1, each with a 1 kB request id, as
    fast as the host reads them (50 per Batch frame when batching is in force), until its
    writes have been blocked for 2 s (the host stopped reading it) or it has sent 60,000. C then
    reads again.

    Asserts: the host stops reading C before 60,000 requests (it does not hold more and more
    error responses for a caller that does not read); once C reads again, within 30 s every
    request C sent has exactly one response, with ERROR_CODE_DEADLINE_EXCEEDED or
    ERROR_CODE_OVERLOADED (no error response was dropped)."""
    target_type = ctx.unique("sink")
    target = await ctx.serving("t", target_type)
    caller = await ctx.connect(
        "c", hello=DEFAULT if ctx.legacy else ctx.hello((pb.CAPABILITY_BATCHING,))
    )
    for worker in (target, caller):
        worker.data.trace_frames = False
    caller.data.pause()
    state: dict[str, int | bool] = {"sent": 0, "stop": False}
    pad = "x" * 1000

    async def pump() -> None:
        while not state["stop"] and int(state["sent"]) < _MAX_UNREAD_REQUESTS:
            n = int(state["sent"])
            await caller.request(rpc_request(f"{n:08d}-{pad}", target_type, "k", "x", timeout_ms=1))
            state["sent"] = n + 1

    task = asyncio.ensure_future(pump())
    with ctx.step(("AWP-FLOW-008", "AWP-FLOW-001"), "the host stops reading C", gate=True):
        blocked = await _wait_for_backpressure(ctx, task, state)
        ctx.check(blocked, f"C sent {state['sent']} requests without the host ever stopping it")
    ctx.trace.note("c", f"blocked after {state['sent']} requests; reads again")
    caller.data.resume()
    state["stop"] = True
    await asyncio.wait_for(task, ctx.seconds(30.0))
    total = int(state["sent"])
    answered: dict[str, int] = {}
    repeated: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(30.0)
    while len(answered) < total and loop.time() < deadline:
        for frame in caller.data.take_all():
            if frame.HasField("response"):
                response = frame.response
                if response.request_id in answered:
                    repeated.append(response.request_id[:8])
                answered[response.request_id] = response.error_code
        await asyncio.sleep(0.05)
    ctx.decide(
        ("AWP-FLOW-007", "AWP-ERR-004"),
        "every request C sent is answered: no error response is dropped",
        len(answered) == total,
        f"{len(answered)} of {total} requests were answered within 30 s of C reading again",
    )
    ctx.decide(
        "AWP-ERR-004",
        "no request is answered twice",
        not repeated,
        f"{len(repeated)} requests were answered twice, the first {repeated[:3]}",
    )
    if not ctx.legacy:
        allowed = (pb.ERROR_CODE_DEADLINE_EXCEEDED, pb.ERROR_CODE_OVERLOADED)
        wrong = [code for code in answered.values() if code not in allowed]
        ctx.decide(
            "AWP-FLOW-007",
            "each answer is the error the host owed: deadline or overload",
            not wrong,
            f"{len(wrong)} requests ended otherwise than deadline or overload",
        )
