"""Host cases: opening connections, client-ids, odd and oversized frames, the legacy path."""

from __future__ import annotations

import asyncio

import grpc

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import event, rpc_request, type_subscription
from conformance._host_context import HostContext
from conformance._predicates import event_with_id
from conformance._wire import unknown_case_frame
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []


async def echo_check(ctx: HostContext, worker: RawWorker, what: str) -> None:
    """Check ``worker``'s channel still works: it receives an event it publishes to itself."""
    agent_type = ctx.unique("echo")
    topic = ctx.unique("echo.topic")
    await worker.register(agent_type)
    await worker.subscribe(type_subscription(ctx.unique("sub"), topic, agent_type))
    sent = event(topic, "k", "echo")
    await worker.publish(sent)
    await worker.data.expect(
        f"own event {sent.id} ({what})",
        event_with_id(sent.id),
    )


@host_case("host/connection/client-id/missing", requirements=["AWP-CONN-002"])
async def missing_client_id(ctx: HostContext) -> None:
    """Procedure: open a data channel without `client-id` metadata, then one with an empty
    `client-id`; call RegisterAgent without `client-id`.

    Asserts: each call ends with INVALID_ARGUMENT."""
    for label, cid in (("no-id", None), ("empty-id", "")):
        worker = ctx.worker(label, client_id=cid)
        await worker.open()
        code = await worker.data.wait_end()
        ctx.check(
            code is grpc.StatusCode.INVALID_ARGUMENT,
            f"OpenChannel with client-id {cid!r}: expected INVALID_ARGUMENT, got "
            f"{code.name if code else 'an open channel'} (AWP-CONN-002)",
        )
    unary = ctx.worker("unary", client_id=None)
    ctx.check_status(
        await unary.register_status(ctx.unique("t")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "RegisterAgent without client-id",
        step=("AWP-CONN-002", "RegisterAgent without client-id: INVALID_ARGUMENT"),
    )


@host_case("host/connection/duplicate-channel", requirements=["AWP-CONN-005"])
async def duplicate_channel(ctx: HostContext) -> None:
    """Procedure: open a data channel for client-id C; open a second one with the same C.

    Asserts: the second ends with ALREADY_EXISTS; the first still delivers an event its worker
    publishes to itself."""
    first = await ctx.connect("first")
    second = ctx.worker("second", client_id=first.client_id)
    await second.open()
    code = await second.data.wait_end()
    ctx.check(
        code is grpc.StatusCode.ALREADY_EXISTS,
        f"second OpenChannel: expected ALREADY_EXISTS, got {code.name if code else 'open'} "
        "(AWP-CONN-005)",
    )
    with ctx.step("AWP-CONN-005", "the first channel still works"):
        ctx.check(not first.data.ended, "the first channel ended")
        await echo_check(ctx, first, "first channel after the rejected duplicate")


@host_case(
    "host/connection/unknown-frame-case",
    requirements=["AWP-CONN-012", "AWP-ERR-010"],
    v1_only=True,
)
async def unknown_frame_case(ctx: HostContext) -> None:
    """Procedure: a v1 worker sends a frame whose only field is an unknown field number (no
    known oneof case), then publishes an event to itself.

    Asserts: a Notice with ERROR_CODE_INVALID_REQUEST arrives; the channel stays open and
    delivers the later event."""
    worker = await ctx.connect("w")
    await worker.send(unknown_case_frame())
    with ctx.step(("AWP-CONN-012", "AWP-ERR-010"), "a Notice reports the frame"):
        notice = await worker.expect_notice("notice for the unknown frame case")
        ctx.check(
            notice.code == pb.ERROR_CODE_INVALID_REQUEST,
            f"notice code {pb.ErrorCode.Name(notice.code)}, expected ERROR_CODE_INVALID_REQUEST",
        )
        ctx.check(notice.message != "", "notice has an empty message")
    with ctx.step("AWP-CONN-012", "the channel stays open and delivers a later event"):
        await echo_check(ctx, worker, "after the unknown frame")


@host_case("host/connection/legacy-path", requirements=["AWP-VER-003", "AWP-CONN-001"])
async def legacy_path(ctx: HostContext) -> None:
    """Procedure: worker L uses the legacy path `/agents.AgentRpc/...` without a hello;
    worker V uses the run's path. L registers type T; V sends L a request; L answers.

    Asserts: L's calls succeed on the legacy path and the request and response cross between
    the two paths."""
    agent_type = ctx.unique("legacy")
    legacy = ctx.worker("legacy", hello=None, legacy_path=True)
    with ctx.step("AWP-VER-003", "the legacy path serves OpenChannel and RegisterAgent", gate=True):
        await legacy.open()
        await legacy.register(agent_type)
    with ctx.step("AWP-CONN-001", "the run's path serves OpenChannel", gate=True):
        caller = await ctx.connect("caller")
        await caller.request(
            pb.RpcRequest(
                request_id="1",
                target=pb.AgentId(type=agent_type, key="k"),
                payload=pb.Payload(
                    data_type="Note", data_content_type="application/json", data=b"1"
                ),
            )
        )
    with ctx.step(("AWP-VER-003", "AWP-CONN-001"), "the request and response cross paths"):
        req = await legacy.expect_request("request on the legacy path")
        await legacy.respond(pb.RpcResponse(request_id=req.request_id, payload=req.payload))
        resp = await caller.expect_response("1")
        ctx.check(resp.error == "", f"unexpected error {resp.error!r}")


@host_case(
    "host/connection/frame-size-limits",
    requirements=["AWP-CONN-003", "AWP-CONN-004"],
    v1_only=True,
)
async def frame_size_limits(ctx: HostContext) -> None:
    """Procedure: worker W (subscribed to its own topic) publishes an event whose frame is
    exactly 4 MiB; then, when the welcome's max_message_bytes is at most 30 MiB, a frame one
    byte over that limit. Another worker V then publishes to itself.

    Asserts: the 4 MiB event is delivered back to W; the oversized frame ends W's data
    channel with RESOURCE_EXHAUSTED; V's channel still works."""
    worker = await ctx.connect("w")
    agent_type = ctx.unique("big")
    topic = ctx.unique("big.topic")
    await worker.register(agent_type)
    await worker.subscribe(type_subscription(ctx.unique("sub"), topic, agent_type))
    sent = event(topic, "k", "")
    await worker.publish(_padded(sent, 4 * 1024 * 1024))
    with ctx.step("AWP-CONN-003", "a 4 MiB frame is accepted and delivered"):
        await worker.data.expect("the 4 MiB event", event_with_id(sent.id), within=10.0)
    limit = worker.welcome.max_message_bytes if worker.welcome is not None else 0
    ctx.decide(
        ("AWP-CONN-003", "AWP-CONN-004"),
        "max_message_bytes is at least 4 MiB",
        limit >= 4 * 1024 * 1024,
        f"max_message_bytes {limit} is under 4 MiB",
    )
    if limit <= 30 * 1024 * 1024:
        await worker.publish(_padded(event(topic, "k", ""), limit + 1))
        with ctx.step("AWP-CONN-004", "a frame over the limit ends the channel"):
            code = await worker.data.wait_end(within=10.0)
            ctx.check(
                code is grpc.StatusCode.RESOURCE_EXHAUSTED,
                "oversized frame: expected RESOURCE_EXHAUSTED, got "
                f"{code.name if code else 'open'}",
            )
    other = await ctx.connect("v")
    with ctx.step("AWP-CONN-004", "another worker's channel still works"):
        await echo_check(ctx, other, "another worker after the oversized frame")


def _padded(ev: ce.CloudEvent, frame_bytes: int) -> ce.CloudEvent:
    """Return ``ev`` with binary_data sized so that its frame is exactly ``frame_bytes``."""
    padded = ce.CloudEvent()
    padded.CopyFrom(ev)
    size = frame_bytes
    for _ in range(4):  # the length prefixes grow with the data; converge on the exact size
        padded.binary_data = b"x" * size
        actual = len(pb.OpenChannelRequest(cloud_event=padded).SerializeToString())
        size += frame_bytes - actual
    padded.binary_data = b"x" * size
    return padded


@host_case("host/connection/undecodable-frame", requirements=["AWP-CONN-014", "AWP-CONN-018"])
async def undecodable_frame(ctx: HostContext) -> None:
    """Procedure: worker B serves type T and bystander O has its channel open; B writes bytes
    that do not decode as a frame (a length-delimited field whose length runs past the end).
    Worker V then registers T.

    Asserts: B's data channel ends with a status other than OK (gRPC reports INTERNAL), so
    that B can tell a protocol error from a close; V's registration of T succeeds within 2 s
    (B was cleaned up); V's channel works."""
    agent_type = ctx.unique("garbled")
    bystander = await ctx.connect("o")
    broken = await ctx.serving("b", agent_type)
    await broken.send(b"\x0a\xff\x01\x00")
    with ctx.step("AWP-CONN-014", "an undecodable frame ends B's channel"):
        code = await broken.data.wait_end()
        ctx.check(code is not None, "B's channel is still open after an undecodable frame")
        ctx.check(
            code is not grpc.StatusCode.OK,
            "B's channel ended with OK after an undecodable frame: indistinguishable from a close",
        )
    other = await ctx.connect("v")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(2.0)
    with ctx.step("AWP-CONN-018", "B's registration is removed: V registers T", gate=True):
        while (result := await other.register_status(agent_type))[0] is not grpc.StatusCode.OK:
            ctx.check(loop.time() < deadline, f"V cannot register B's type: {result}")
            await asyncio.sleep(0.05)
    with ctx.step("AWP-CONN-014", "other channels keep working"):
        await echo_check(ctx, other, "after B's undecodable frame")
        await echo_check(ctx, bystander, "the bystander's channel after B's undecodable frame")


@host_case(
    "host/connection/half-close",
    requirements=["AWP-CONN-026", "AWP-CONN-018"],
)
async def half_close(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C sends request `r` to X (timeout 30 s); once T has it,
    T half-closes its data channel (ends its request stream) and keeps reading.

    Asserts: C receives ERROR_CODE_TARGET_UNAVAILABLE for `r` within 2 s; T's channel then
    ends with status OK."""
    agent_type = ctx.unique("half")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    await caller.request(rpc_request("r", agent_type, "k", "x", timeout_ms=30_000))
    await target.expect_request()
    await target.data.call.done_writing()
    ctx.trace.note("t", "data channel half-closed by the harness")
    with ctx.step(("AWP-CONN-026", "AWP-CONN-018"), "C is answered within 2 s", gate=True):
        resp = await caller.expect_response("r", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_TARGET_UNAVAILABLE, "target half-closed", "AWP-CONN-018")
    code = await target.data.wait_end(within=2.0)
    ctx.decide(
        "AWP-CONN-026",
        "the half-closed channel ends with OK",
        code is grpc.StatusCode.OK,
        f"the half-closed channel ended with {code.name if code else 'nothing (still open)'}, "
        "expected OK",
    )


@host_case("host/connection/list-without-channel", requirements=["AWP-CONN-027"])
async def list_without_channel(ctx: HostContext) -> None:
    """Procedure: a client-id that never opens a data channel calls GetSubscriptions with a
    4 s deadline (the channel wait is at least 5 s).

    Asserts: the call succeeds within the deadline (a host that waits for a data channel
    runs past it, or fails the call with FAILED_PRECONDITION)."""
    loner = ctx.worker("loner")
    code, details, _ = await loner.unary(
        "GetSubscriptions", pb.GetSubscriptionsRequest(), pb.GetSubscriptionsResponse, within=4.0
    )
    ctx.decide(
        "AWP-CONN-027",
        "GetSubscriptions without a data channel is answered at once",
        code is grpc.StatusCode.OK,
        f"GetSubscriptions without a data channel: {code.name} {details!r}",
    )


@host_case("host/connection/legacy-path/every-method", requirements=["AWP-VER-003"])
async def legacy_path_every_method(ctx: HostContext) -> None:
    """Procedure: worker L uses the legacy path `/agents.AgentRpc/...` without a hello: it
    opens its data channel, registers type T, adds, lists and removes a subscription, and
    opens its control channel.

    Asserts: each of the six methods succeeds on the legacy path, and the listing holds the
    subscription."""
    agent_type = ctx.unique("legacy")
    legacy = ctx.worker("legacy", hello=None, legacy_path=True)
    await legacy.open()
    await legacy.register(agent_type)
    sub = type_subscription(ctx.unique("s"), ctx.unique("topic"), agent_type)
    await legacy.subscribe(sub)
    listed = [s.id for s in await legacy.subscriptions() if s.id == sub.id]
    ctx.check(listed == [sub.id], f"GetSubscriptions on the legacy path lists {listed}")
    ctx.check_status(
        await legacy.remove_subscription_status(sub.id), grpc.StatusCode.OK, "RemoveSubscription"
    )
    control = await legacy.open_control()
    await legacy.register(ctx.unique("after-control"))  # a round trip after the control call
    ctx.check(not control.ended, "OpenControlChannel on the legacy path ended at once")
