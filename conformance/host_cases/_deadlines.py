"""Host cases: RPC deadlines."""

from __future__ import annotations

import asyncio

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import rpc_request
from conformance._host_context import HostContext
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case(
    "host/rpc/deadline/expires",
    requirements=["AWP-RPC-010", "AWP-RPC-011", "AWP-ERR-004", "AWP-ERR-002", "AWP-RPC-005"],
    v1_only=True,
)
async def deadline_expires(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C sends request `d` to X with timeout_ms 400; T holds
    it without answering until C has its answer, then answers late.

    Asserts: T's copy carries timeout_ms between 1 and 400; C receives
    ERROR_CODE_DEADLINE_EXCEEDED for `d` no sooner than 0.35 s and within 2 s after the
    deadline; T's late answer does not reach C, and T receives a Notice with
    ERROR_CODE_INVALID_REQUEST naming it."""
    agent_type = ctx.unique("slow")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await caller.request(rpc_request("d", agent_type, "k", "x", timeout_ms=400))
    got = await target.expect_request()
    ctx.decide(
        "AWP-RPC-011",
        "the forwarded timeout_ms is the remaining budget",
        1 <= got.timeout_ms <= 400,
        f"forwarded timeout_ms is {got.timeout_ms}, expected the remaining budget (1..400)",
    )
    with ctx.step(("AWP-RPC-010", "AWP-ERR-004"), "C is answered by the deadline", gate=True):
        resp = await caller.expect_response("d", within=0.4 + 2.0)
    elapsed = loop.time() - started
    ctx.check_error(resp, pb.ERROR_CODE_DEADLINE_EXCEEDED, "expired request", "AWP-RPC-010")
    ctx.decide(
        "AWP-RPC-010",
        "the deadline error does not come early",
        elapsed >= 0.35,
        f"the deadline error came after {elapsed:.3f} s, before 0.4 s",
    )
    await target.respond(pb.RpcResponse(request_id=got.request_id, payload=got.payload))
    with ctx.step("AWP-RPC-005", "T's late answer gets a Notice"):
        notice = await target.expect_notice("a notice for the late response", within=2.0)
        ctx.check(
            notice.code == pb.ERROR_CODE_INVALID_REQUEST and notice.request_id == got.request_id,
            f"the late response's notice is {notice}",
        )
    rest = await caller.data.settle(0.2)
    ctx.decide(
        ("AWP-RPC-005", "AWP-ERR-004"),
        "the late answer does not reach C",
        not rest,
        f"the late response (or another frame) reached the caller: {rest}",
    )


@host_case(
    "host/rpc/deadline/default-announced",
    requirements=["AWP-RPC-010", "AWP-RPC-011"],
    v1_only=True,
)
async def default_deadline(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C sends a request with timeout_ms 0.

    Asserts: T's copy carries a timeout_ms between 1 and the welcome's
    default_rpc_timeout_ms."""
    agent_type = ctx.unique("dflt")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    ctx.decide(
        "AWP-RPC-010",
        "the welcome announces a default deadline",
        caller.welcome is not None,
        "no welcome, so no announced default deadline",
        gate=True,
    )
    assert caller.welcome is not None
    default = caller.welcome.default_rpc_timeout_ms
    await caller.request(rpc_request("z", agent_type, "k", "x"))
    got = await target.expect_request()
    ctx.decide(
        ("AWP-RPC-010", "AWP-RPC-011"),
        "the forwarded timeout_ms is within the announced default",
        1 <= got.timeout_ms <= default,
        f"forwarded timeout_ms is {got.timeout_ms}, announced default {default}",
    )
    await target.respond(pb.RpcResponse(request_id=got.request_id, payload=got.payload))
    await caller.expect_response("z")


@host_case(
    "host/rpc/deadline/cap-announced",
    requirements=["AWP-RPC-024", "AWP-RPC-011"],
    v1_only=True,
)
async def deadline_cap(ctx: HostContext) -> None:
    """Procedure: T serves X; caller C reads the welcome's max_rpc_timeout_ms (M) and sends a
    request whose timeout_ms is M + 10^9 (2^62 when M is 0, no cap); T answers it.

    Asserts: T's copy carries a timeout_ms of at most M and more than M - 60,000 (when M is
    0: more than 2^62 - 60,000, the timeout honoured); C receives T's answer."""
    agent_type = ctx.unique("cap")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    ctx.check(caller.welcome is not None, "no welcome, so no announced cap")
    assert caller.welcome is not None
    cap = caller.welcome.max_rpc_timeout_ms
    asked = cap + 10**9 if cap else 2**62
    await caller.request(rpc_request("big", agent_type, "k", "x", timeout_ms=asked))
    got = await target.expect_request()
    ceiling = cap if cap else asked
    ctx.decide(
        "AWP-RPC-024",
        "the forwarded timeout_ms is the announced cap (or the timeout, when there is none)",
        ceiling - 60_000 < got.timeout_ms <= ceiling,
        f"asked {asked} ms with max_rpc_timeout_ms {cap}: the forwarded timeout_ms is "
        f"{got.timeout_ms}, expected just under {ceiling}",
    )
    await target.respond(pb.RpcResponse(request_id=got.request_id, payload=got.payload))
    await caller.expect_response("big")
