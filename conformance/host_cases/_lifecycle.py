"""Host cases: draining on shutdown (needs a subject the harness started)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import rpc_request
from conformance._cases import CaseSkip, SkipReason
from conformance._host_context import HostContext
from conformance._predicates import response_to
from conformance._wire import CANONICAL_SERVICE
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case(
    "host/lifecycle/drain",
    requirements=["AWP-CONN-015", "AWP-CONN-016", "AWP-OBS-001", "AWP-ERR-004"],
    v1_only=True,
)
async def drain(ctx: HostContext) -> None:
    """Procedure: (spawn mode only) T serves X; caller C sends requests `held` and `kept` to
    X, which T holds. The harness sends the host SIGTERM. C sends request `new` to X; an
    observer checks health; T then answers `held` and never `kept`.

    Asserts: C and T each receive a Notice with ERROR_CODE_SHUTTING_DOWN; `new` is answered
    with ERROR_CODE_SHUTTING_DOWN and never reaches T; health reports NOT_SERVING for
    `agentworker.v1.AgentRpcService`; C receives exactly one response to `held` (T's answer,
    or ERROR_CODE_SHUTTING_DOWN) and, when the host closes after its grace period, exactly
    one to `kept`, ERROR_CODE_SHUTTING_DOWN."""
    agent_type = ctx.unique("drain")
    target = await ctx.serving("t", agent_type)
    caller = await ctx.connect("c")
    observer = ctx.worker("health")
    await caller.request(rpc_request("held", agent_type, "k", "x", timeout_ms=30_000))
    held = await target.expect_request("the held request")
    await caller.request(rpc_request("kept", agent_type, "k", "x", timeout_ms=50_000))
    await target.expect_request("the kept request")
    if not ctx.stop_subject():
        raise CaseSkip(SkipReason.NOT_APPLICABLE, "needs a host the harness started")
    ctx.trace.note("harness", "SIGTERM sent to the host")
    for worker in (caller, target):
        notice = await worker.expect_notice("a SHUTTING_DOWN notice", within=2.0)
        ctx.check(
            notice.code == pb.ERROR_CODE_SHUTTING_DOWN,
            f"{worker.label}: notice code {pb.ErrorCode.Name(notice.code)}",
        )
    await caller.request(rpc_request("new", agent_type, "k", "y", timeout_ms=30_000))
    resp = await caller.expect_response("new", within=2.0)
    ctx.check_error(resp, pb.ERROR_CODE_SHUTTING_DOWN, "request sent while draining")
    code, details, health = await observer.unary(
        "",
        health_pb2.HealthCheckRequest(service=CANONICAL_SERVICE),
        health_pb2.HealthCheckResponse,
        path="/grpc.health.v1.Health/Check",
        within=2.0,
    )
    ctx.check(
        code is grpc.StatusCode.OK
        and health is not None
        and health.status == health_pb2.HealthCheckResponse.NOT_SERVING,
        f"health while draining: {code.name} {details!r} {health}",
    )
    stray = [f for f in target.data.take_all() if f.WhichOneof("message") == "request"]
    ctx.check(not stray, "a request sent while draining reached the target")
    if not target.data.ended:
        await target.respond(pb.RpcResponse(request_id=held.request_id, payload=held.payload))
    await caller.data.expect("one response to `held`", response_to("held"), within=15.0)
    extra = [f for f in await caller.data.settle(0.1) if response_to("held")(f)]
    ctx.check(not extra, "the caller received two responses to `held`")
    # The host may wait its grace period for `kept`, then answers it as it closes (CONN-016).
    kept = await caller.expect_response("kept", within=40.0)
    ctx.check_error(kept, pb.ERROR_CODE_SHUTTING_DOWN, "request pending when the host closed")
