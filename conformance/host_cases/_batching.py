"""Host cases: batching (capability CAPABILITY_BATCHING)."""

from __future__ import annotations

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, rpc_request, type_subscription
from conformance._cases import Level
from conformance._host_context import HostContext
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case(
    "host/batching/order",
    requirements=["AWP-BAT-003", "AWP-BAT-001"],
    level=Level.CAPABILITY,
    v1_only=True,
    capability=pb.CAPABILITY_BATCHING,
)
async def batch_order(ctx: HostContext) -> None:
    """Procedure: with CAPABILITY_BATCHING in force, P serves a type subscribed to topic X;
    receiver R (also batching) likewise. P sends one Batch of 10 events on X, then 5 single
    events.

    Asserts: P and R each receive all 15 events, in send order (batches flattened)."""
    caps = (pb.CAPABILITY_BATCHING,)
    topic = ctx.unique("batch")
    workers = []
    for label in ("p", "r"):
        worker = await ctx.connect(label, hello=ctx.hello(caps))
        ctx.check(
            worker.welcome is not None and pb.CAPABILITY_BATCHING in worker.welcome.capabilities,
            f"{label}: batching not in force (AWP-BAT-001)",
        )
        agent_type = ctx.unique(label)
        await worker.register(agent_type)
        await worker.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
        workers.append(worker)
    sent = [event(topic, "k", str(i)) for i in range(15)]
    batch = pb.OpenChannelRequest.Batch(
        messages=[pb.OpenChannelRequest(cloud_event=e) for e in sent[:10]]
    )
    await workers[0].send(pb.OpenChannelRequest(batch=batch))
    for ev in sent[10:]:
        await workers[0].publish(ev)
    for worker in workers:
        got = [(await worker.expect_event(f"event {n + 1} of 15")).id for n in range(15)]
        ctx.check(
            got == [e.id for e in sent],
            f"{worker.label} received events out of order (AWP-BAT-003)",
        )


@host_case(
    "host/batching/nested-batch",
    requirements=["AWP-BAT-002"],
    level=Level.CAPABILITY,
    v1_only=True,
    capability=pb.CAPABILITY_BATCHING,
)
async def nested_batch(ctx: HostContext) -> None:
    """Procedure: with batching in force, P (subscribed to X) sends a Batch holding an event
    E1, a nested Batch with event E2, and an event E3.

    Asserts: P receives a Notice with ERROR_CODE_INVALID_REQUEST; E1 and E3 are delivered,
    E2 is not."""
    caps = (pb.CAPABILITY_BATCHING,)
    topic = ctx.unique("nest")
    worker = await ctx.connect("p", hello=ctx.hello(caps))
    agent_type = ctx.unique("p")
    await worker.register(agent_type)
    await worker.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    e1, e2, e3 = (event(topic, "k", str(i)) for i in range(3))
    inner = pb.OpenChannelRequest.Batch(messages=[pb.OpenChannelRequest(cloud_event=e2)])
    outer = pb.OpenChannelRequest.Batch(
        messages=[
            pb.OpenChannelRequest(cloud_event=e1),
            pb.OpenChannelRequest(batch=inner),
            pb.OpenChannelRequest(cloud_event=e3),
        ]
    )
    await worker.send(pb.OpenChannelRequest(batch=outer))
    with ctx.step("AWP-BAT-002", "a Notice reports the nested batch"):
        notice = await worker.expect_notice("a notice for the nested batch")
        ctx.check(
            notice.code == pb.ERROR_CODE_INVALID_REQUEST,
            f"notice code {pb.ErrorCode.Name(notice.code)}",
        )
    with ctx.step("AWP-BAT-002", "E1 and E3 are delivered, E2 is not"):
        got = [(await worker.expect_event("E1 or E3")).id for _ in range(2)]
        ctx.check(got == [e1.id, e3.id], f"received {got}, expected E1 then E3")
        frames = await worker.data.settle(0.2)
        rest = [f for f in frames if f.WhichOneof("message") == "cloud_event"]
        ctx.check(not rest, "the nested batch's event was delivered")


# Above this announced limit a batch of limit + 1 events would approach gRPC's default 4 MiB
# message size, so only the empty batch is checked.
_LARGEST_CHECKED_LIMIT = 32_768


@host_case(
    "host/batching/frame-count-limits",
    requirements=["AWP-BAT-005", "AWP-BAT-002"],
    level=Level.CAPABILITY,
    v1_only=True,
    capability=pb.CAPABILITY_BATCHING,
)
async def batch_limits(ctx: HostContext) -> None:
    """Procedure: with batching in force, P (subscribed to X) sends a Batch of L + 1 events,
    where L is its welcome's max_batch_messages (0 meaning 1024), then an empty Batch, then a
    Batch of two events E1, E2.

    Asserts: P receives two Notices with ERROR_CODE_INVALID_REQUEST, none of the L + 1 events,
    then E1 and E2 (the channel stays open)."""
    caps = (pb.CAPABILITY_BATCHING,)
    topic = ctx.unique("limit")
    worker = await ctx.connect("p", hello=ctx.hello(caps))
    ctx.check(worker.welcome is not None, "no welcome")
    assert worker.welcome is not None
    limit = worker.welcome.max_batch_messages or 1024
    agent_type = ctx.unique("p")
    await worker.register(agent_type)
    await worker.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    expected_notices = 1
    if limit <= _LARGEST_CHECKED_LIMIT:
        over = pb.OpenChannelRequest.Batch(
            messages=[
                pb.OpenChannelRequest(cloud_event=event(topic, "k", f"over{i}"))
                for i in range(limit + 1)
            ]
        )
        await worker.send(pb.OpenChannelRequest(batch=over))
        expected_notices = 2
    await worker.send(pb.OpenChannelRequest(batch=pb.OpenChannelRequest.Batch()))
    e1, e2 = (event(topic, "k", name) for name in ("e1", "e2"))
    fine = pb.OpenChannelRequest.Batch(
        messages=[pb.OpenChannelRequest(cloud_event=e1), pb.OpenChannelRequest(cloud_event=e2)]
    )
    await worker.send(pb.OpenChannelRequest(batch=fine))
    reqs = ("AWP-BAT-005", "AWP-BAT-002") if expected_notices == 2 else "AWP-BAT-002"
    with ctx.step(reqs, "a Notice for each batch over the limit or empty"):
        for n in range(expected_notices):
            notice = await worker.expect_notice(f"notice {n + 1} of {expected_notices}")
            ctx.check(
                notice.code == pb.ERROR_CODE_INVALID_REQUEST,
                f"notice code {pb.ErrorCode.Name(notice.code)}",
            )
    with ctx.step(reqs, "only the valid batch's events are delivered"):
        got = [(await worker.expect_event("E1 or E2")).id for _ in range(2)]
        ctx.check(got == [e1.id, e2.id], f"received {got}, expected E1 then E2 only")


_WORKER_DEFAULT_LIMIT = 4 * 1024 * 1024  # a hello without max_message_bytes (AWP-CONN-029)
_BIG_TEXT = "b" * (512 * 1024)


@host_case(
    "host/batching/worker-frame-limit",
    requirements=["AWP-BAT-006", "AWP-BAT-003"],
    level=Level.CAPABILITY,
    v1_only=True,
    capability=pb.CAPABILITY_BATCHING,
)
async def worker_frame_limit(ctx: HostContext) -> None:
    """Procedure: receiver R (batching in force, a hello without max_message_bytes, so 4 MiB)
    accepts messages of at most 4 MiB and subscribes to X, then stops reading. Publisher P
    publishes 48 events of 512 KiB on X (24 MiB in all), then sends a request to an unserved
    type and waits for its answer (so the host has read the events). R reads again.

    Asserts: R receives the 48 events in order and its channel stays open: no batch the host
    built for R exceeded R's 4 MiB limit (a larger one would end R's channel with
    RESOURCE_EXHAUSTED). (Whether the host batches at all depends on its writer; a host that
    sends the events one by one passes.)"""
    caps = (pb.CAPABILITY_BATCHING,)
    topic = ctx.unique("big")
    receiver = ctx.worker("r", hello=ctx.hello(caps))
    receiver.receive_limit = _WORKER_DEFAULT_LIMIT
    await receiver.open()
    agent_type = ctx.unique("r")
    await receiver.register(agent_type)
    await receiver.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    receiver.data.trace_frames = False
    publisher = await ctx.connect("p")
    publisher.data.trace_frames = False
    receiver.data.pause()
    sent = [event(topic, "k", _BIG_TEXT) for _ in range(48)]  # enough to queue up at the host
    for ev in sent:
        await publisher.publish(ev)
    await publisher.request(rpc_request("sync", ctx.unique("nobody"), "k", "x"))
    await publisher.expect_response("sync", within=10.0)
    receiver.data.resume()
    count = len(sent)
    got = [
        (await receiver.expect_event(f"event {n + 1} of {count}", within=10.0)).id
        for n in range(count)
    ]
    ctx.check(got == [ev.id for ev in sent], "the events arrived out of order (AWP-BAT-003)")
    ctx.check(
        not receiver.data.ended,
        f"R's channel ended ({receiver.data.end_code}): a frame exceeded R's 4 MiB limit "
        "(AWP-BAT-006)",
    )


@host_case("host/batching/without-capability", requirements=["AWP-BAT-001"], v1_only=True)
async def batch_without_capability(ctx: HostContext) -> None:
    """Procedure: worker Q, whose hello does not announce CAPABILITY_BATCHING, serves a type
    subscribed to topic X and sends one Batch of three events on X anyway.

    Asserts: Q receives the three events, in order (a host processes a batch even where
    batching is not in force)."""
    topic = ctx.unique("unasked")
    worker = await ctx.connect("q", hello=ctx.hello(()))
    agent_type = ctx.unique("q")
    await worker.register(agent_type)
    await worker.subscribe(type_subscription(ctx.unique("s"), topic, agent_type))
    sent = [event(topic, "k", str(i)) for i in range(3)]
    batch = pb.OpenChannelRequest.Batch(
        messages=[pb.OpenChannelRequest(cloud_event=e) for e in sent]
    )
    await worker.send(pb.OpenChannelRequest(batch=batch))
    got = [(await worker.expect_event(f"event {n + 1} of 3")).id for n in range(3)]
    ctx.check(got == [e.id for e in sent], f"received {got}, expected the batch's events in order")
