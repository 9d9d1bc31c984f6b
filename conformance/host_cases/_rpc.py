"""Host cases: RPC routing, correlation, validation and host-generated errors."""

from __future__ import annotations

import asyncio

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import json_payload, rpc_request, type_subscription
from conformance._host_context import HostContext
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case(
    "host/rpc/routing",
    requirements=[
        "AWP-RPC-003",
        "AWP-REG-001",
        "AWP-OBS-005",
        "AWP-RPC-005",
        "AWP-ERR-004",
        "AWP-CONN-010",
    ],
)
async def routing(ctx: HostContext) -> None:
    """Procedure: T serves type X; caller C sends request id `c-1` to X/key-1 with source,
    method, metadata and a payload; T answers with a payload and metadata, then answers
    again.

    Asserts: T receives the request with target, source, method, payload and metadata
    unchanged; C receives exactly one response, with id `c-1`, T's payload and metadata; on
    v1 runs T receives a Notice with ERROR_CODE_INVALID_REQUEST for its second answer. (As in
    every case, each frame the host sends has exactly one oneof case set.)"""
    agent_type = ctx.unique("route")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    sent = rpc_request("c-1", agent_type, "key-1", '{"q": 1}')
    sent.source.CopyFrom(pb.AgentId(type="caller", key="c"))
    sent.method = "ask"
    sent.metadata["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent.metadata["x-k"] = "v"
    await caller.request(sent)
    with ctx.step(("AWP-RPC-003", "AWP-REG-001"), "the request reaches T", gate=True):
        got = await target.expect_request()
    for name in ("target", "source", "method", "payload", "metadata"):
        ctx.decide(
            ("AWP-RPC-003", "AWP-OBS-005") if name == "metadata" else "AWP-RPC-003",
            f"the forwarded {name} is unchanged",
            getattr(got, name) == getattr(sent, name),
            f"forwarded {name} differs: sent {getattr(sent, name)!r}, got {getattr(got, name)!r}",
        )
    reply = pb.RpcResponse(request_id=got.request_id, payload=json_payload("Answer", '{"a": 2}'))
    reply.metadata["m"] = "1"
    await target.respond(reply)
    with ctx.step(("AWP-RPC-004", "AWP-ERR-004"), "C receives the response as c-1", gate=True):
        resp = await caller.expect_response("c-1")
    await target.respond(reply)
    if not ctx.legacy:
        with ctx.step("AWP-RPC-005", "a second answer is refused with a Notice"):
            notice = await target.expect_notice("a notice for the second answer", within=2.0)
            ctx.check(
                notice.code == pb.ERROR_CODE_INVALID_REQUEST,
                f"notice code {pb.ErrorCode.Name(notice.code)}",
            )
    ctx.decide(
        ("AWP-RPC-004", "AWP-OBS-005"),
        "the response carries T's payload and metadata",
        resp.error == "" and resp.payload == reply.payload and dict(resp.metadata) == {"m": "1"},
        f"response error {resp.error!r}, payload {resp.payload}, metadata {dict(resp.metadata)}",
    )
    rest = await caller.data.settle(0.2)
    ctx.decide(
        ("AWP-RPC-005", "AWP-ERR-004"),
        "C receives exactly one response",
        not rest,
        f"the caller received {len(rest)} more frames",
    )


@host_case(
    "host/rpc/correlation/colliding-request-ids",
    requirements=["AWP-RPC-004", "AWP-ERR-004"],
)
async def colliding_request_ids(ctx: HostContext) -> None:
    """Procedure: T serves type X. Callers A and B each send a request with the same id `1`
    (and A also `2`, B also `2`) to X, with payloads naming the caller. T waits for all four,
    then answers them in reverse order, each echoing the request payload.

    Asserts: the four requests reach T under four distinct request ids; A receives exactly one
    response for each of its ids, carrying its own payload, and so does B."""
    agent_type = ctx.unique("corr")
    target = await ctx.serving("t", agent_type)
    callers = {"a": await ctx.connect("a"), "b": await ctx.connect("b")}
    for rid in ("1", "2"):
        for name, caller in callers.items():
            await caller.request(rpc_request(rid, agent_type, "k", f"{name}:{rid}"))
    with ctx.step("AWP-RPC-004", "the four requests reach T", gate=True):
        received = [await target.expect_request(f"request {n + 1} of 4") for n in range(4)]
    ids = [r.request_id for r in received]
    ctx.decide(
        "AWP-RPC-004",
        "T receives the colliding requests under distinct ids",
        len(set(ids)) == 4,
        f"T received request ids {ids}: the host did not give colliding requests distinct ids",
    )
    for req in reversed(received):
        await target.respond(pb.RpcResponse(request_id=req.request_id, payload=req.payload))
    for name, caller in callers.items():
        for rid in ("1", "2"):
            with ctx.step(("AWP-RPC-004", "AWP-ERR-004"), f"{name}/{rid} gets its own answer"):
                resp = await caller.expect_response(rid)
                ctx.check(resp.error == "", f"{name}/{rid}: error {resp.error!r}")
                ctx.check(
                    resp.payload.data.decode() == f"{name}:{rid}",
                    f"caller {name} request {rid} got the answer meant for "
                    f"{resp.payload.data.decode()!r}",
                )
    for name, caller in callers.items():
        rest = await caller.data.settle(0.1)
        ctx.decide(
            ("AWP-RPC-004", "AWP-ERR-004"),
            f"caller {name} receives exactly one response per request",
            not rest,
            f"caller {name} received {len(rest)} extra frames",
        )


@host_case(
    "host/rpc/response-from-wrong-connection",
    requirements=["AWP-RPC-005"],
)
async def wrong_connection(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C sends request `r` to X; T receives it under id H;
    another worker M sends a response with id H and a forged payload; then T answers.

    Asserts: C receives only T's answer; on v1 runs M receives a Notice with
    ERROR_CODE_INVALID_REQUEST naming H."""
    agent_type = ctx.unique("wrong")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    meddler = await ctx.connect("m")
    await caller.request(rpc_request("r", agent_type, "k", "question"))
    got = await target.expect_request()
    await meddler.respond(
        pb.RpcResponse(request_id=got.request_id, payload=json_payload("Note", "forged"))
    )
    if not ctx.legacy:
        with ctx.step("AWP-RPC-005", "M receives a Notice naming the request"):
            notice = await meddler.expect_notice("a notice for the misrouted response", within=2.0)
            ctx.check(
                notice.code == pb.ERROR_CODE_INVALID_REQUEST,
                f"notice code {pb.ErrorCode.Name(notice.code)}",
            )
            ctx.check(
                notice.request_id == got.request_id,
                f"notice names request {notice.request_id!r}, not {got.request_id!r}",
            )
    else:
        await asyncio.sleep(ctx.seconds(0.2))
    await target.respond(
        pb.RpcResponse(request_id=got.request_id, payload=json_payload("Note", "genuine"))
    )
    with ctx.step("AWP-RPC-005", "C receives only T's answer"):
        resp = await caller.expect_response("r")
        ctx.check(
            resp.payload.data == b"genuine",
            f"the caller accepted a response from another connection: {resp.payload.data!r}",
        )
        rest = await caller.data.settle(0.2)
        ctx.check(not rest, f"the caller received {len(rest)} more frames")


@host_case(
    "host/rpc/invalid-request",
    requirements=["AWP-RPC-002", "AWP-ERR-002"],
)
async def invalid_request(ctx: HostContext) -> None:
    """Procedure: T serves X. Caller C sends: a request without target, one with an empty
    target type, one without payload; request `dup` to X (T holds it); `dup` again.

    Asserts: each malformed request and the second `dup` is answered at once (2 s) with
    ERROR_CODE_INVALID_REQUEST in the caller's id and both `error` and `error_code` set; T
    receives only the first `dup`."""
    agent_type = ctx.unique("inv")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    no_target = rpc_request("no-target", agent_type, "k", "x")
    no_target.ClearField("target")
    empty_type = rpc_request("empty-type", "", "k", "x")
    no_payload = rpc_request("no-payload", agent_type, "k", "x")
    no_payload.ClearField("payload")
    for req in (no_target, empty_type, no_payload):
        await caller.request(req)
        with ctx.step("AWP-RPC-002", f"{req.request_id}: answered at once", gate=True):
            resp = await caller.expect_response(req.request_id, within=2.0)
        ctx.check_error(resp, pb.ERROR_CODE_INVALID_REQUEST, req.request_id, "AWP-RPC-002")
    await caller.request(rpc_request("dup", agent_type, "k", "first"))
    with ctx.step("AWP-RPC-002", "the first `dup` reaches T", gate=True):
        first = await target.expect_request("the first `dup`")
    await caller.request(rpc_request("dup", agent_type, "k", "second"))
    with ctx.step("AWP-RPC-002", "the second `dup` is answered at once", gate=True):
        resp = await caller.expect_response("dup", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_INVALID_REQUEST, "second `dup`", "AWP-RPC-002")
    rest = [f for f in await target.data.settle(0.2) if f.WhichOneof("message") == "request"]
    ctx.decide(
        "AWP-RPC-002",
        "T receives no invalid request",
        not rest,
        f"T received {len(rest)} invalid requests",
    )
    await target.respond(pb.RpcResponse(request_id=first.request_id, payload=first.payload))
    with ctx.step("AWP-RPC-002", "the first `dup` still gets its answer"):
        resp = await caller.expect_response("dup")
        ctx.check(resp.payload.data == b"first", f"the first `dup` got {resp}")


@host_case(
    "host/rpc/unknown-target",
    requirements=["AWP-RPC-003", "AWP-ERR-002", "AWP-ERR-004", "AWP-ERR-001"],
)
async def unknown_target(ctx: HostContext) -> None:
    """Procedure: caller C sends a request to a type nobody registered.

    Asserts: C receives, within 2 s, an error response with ERROR_CODE_UNKNOWN_TARGET in its
    request id, with `error` non-empty, and no second response."""
    caller = await ctx.connect("c")
    await caller.request(rpc_request("u-1", ctx.unique("nobody"), "k", "x"))
    with ctx.step(("AWP-RPC-003", "AWP-ERR-004"), "answered within 2 s", gate=True):
        resp = await caller.expect_response("u-1", within=2.0)
    ctx.check_error(
        resp,
        pb.ERROR_CODE_UNKNOWN_TARGET,
        "request to an unknown type",
        ("AWP-RPC-003", "AWP-ERR-001"),
    )
    if ctx.legacy:
        ctx.not_applicable("AWP-ERR-001", "the error code", "a legacy caller reads no error_code")
    # A second response (another error, say) breaks "exactly one response" too.
    with ctx.step(("AWP-RPC-003", "AWP-ERR-004"), "no further frame follows the error"):
        rest = await caller.data.settle(0.2)
        ctx.check(not rest, f"the caller received {len(rest)} more frames after the error")


@host_case(
    "host/errors/legacy-caller-gets-both-fields",
    requirements=["AWP-ERR-002"],
    v1_only=True,
)
async def legacy_caller_error_fields(ctx: HostContext) -> None:
    """Procedure: a legacy caller (no hello) sends a request to an unknown type and a request
    without payload.

    Asserts: each error response sets both a non-empty `error` and the `error_code`
    (UNKNOWN_TARGET, INVALID_REQUEST), whatever the caller's version."""
    caller = ctx.worker("legacy", hello=None)
    await caller.open()
    await caller.request(rpc_request("u", ctx.unique("nobody"), "k", "x"))
    with ctx.step("AWP-ERR-002", "unknown target: answered", gate=True):
        resp = await caller.expect_response("u", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_UNKNOWN_TARGET, "unknown target")
    bad = rpc_request("p", ctx.unique("nobody"), "k", "x")
    bad.ClearField("payload")
    await caller.request(bad)
    with ctx.step("AWP-ERR-002", "request without payload: answered", gate=True):
        resp = await caller.expect_response("p", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_INVALID_REQUEST, "request without payload")


@host_case(
    "host/rpc/target-disconnects",
    requirements=["AWP-CONN-018", "AWP-ERR-004"],
)
async def target_disconnects(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C sends request `r` to X (timeout 30 s); once T has it,
    T's data channel is cancelled.

    Asserts: C receives, within 2 s of the disconnect, ERROR_CODE_TARGET_UNAVAILABLE for `r`."""
    agent_type = ctx.unique("drop")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    await caller.request(rpc_request("r", agent_type, "k", "x", timeout_ms=30_000))
    await target.expect_request()
    await target.disconnect()
    with ctx.step(("AWP-CONN-018", "AWP-ERR-004"), "C is answered within 2 s", gate=True):
        resp = await caller.expect_response("r", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_TARGET_UNAVAILABLE, "target disconnected", "AWP-CONN-018")


@host_case(
    "host/rpc/caller-gone",
    requirements=["AWP-RPC-025", "AWP-RPC-005", "AWP-CONN-018"],
    v1_only=True,
)
async def caller_gone(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C adds a subscription S and sends request `r` to X
    (timeout 30 s); once T has it, C's data channel is cancelled and an observer waits until
    S is no longer listed (the host cleaned C up). T then answers `r`, and then sends a
    response for an id nobody used.

    Asserts: the first notice T receives names the unknown id with
    ERROR_CODE_INVALID_REQUEST: T's answer to the departed caller was dropped without an
    INVALID_REQUEST notice (any notice for it carries ERROR_CODE_TARGET_UNAVAILABLE)."""
    agent_type = ctx.unique("orphan")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    sub = type_subscription(ctx.unique("s"), ctx.unique("topic"), ctx.unique("x"))
    await caller.subscribe(sub)
    await caller.request(rpc_request("r", agent_type, "k", "x", timeout_ms=30_000))
    got = await target.expect_request()
    await caller.disconnect()
    observer = await ctx.connect("observer")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(2.0)
    while any(s.id == sub.id for s in await observer.subscriptions()):
        ctx.check(loop.time() < deadline, "C's subscription is still listed 2 s after it left")
        await asyncio.sleep(0.05)
    await target.respond(pb.RpcResponse(request_id=got.request_id, payload=got.payload))
    bogus = ctx.unique("bogus")
    await target.respond(pb.RpcResponse(request_id=bogus, payload=got.payload))
    earlier: list[pb.Notice] = []  # notices before the unknown id's: for T's answer, if any
    with ctx.step("AWP-RPC-005", "T receives a notice for the unknown id", gate=True):
        notice = await target.expect_notice("the notice for the unknown id")
        while notice.request_id != bogus:
            earlier.append(notice)
            notice = await target.expect_notice("the notice for the unknown id")
    blamed = [n.request_id for n in earlier if n.code == pb.ERROR_CODE_INVALID_REQUEST]
    ctx.decide(
        "AWP-RPC-025",
        "T is not told INVALID_REQUEST for answering a caller that had left",
        not blamed,
        f"T was told ERROR_CODE_INVALID_REQUEST for {blamed}, answered after its caller left",
    )
    ctx.decide(
        "AWP-RPC-005",
        "the unknown id's notice has ERROR_CODE_INVALID_REQUEST",
        notice.code == pb.ERROR_CODE_INVALID_REQUEST,
        f"the unknown id's notice has {pb.ErrorCode.Name(notice.code)}",
    )
