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
    requirements=[
        "AWP-CONN-015",
        "AWP-CONN-016",
        "AWP-OBS-001",
        "AWP-ERR-004",
        "AWP-CONN-024",
        "AWP-CONN-025",
        "AWP-ERR-021",
    ],
    v1_only=True,
)
async def drain(ctx: HostContext) -> None:
    """Procedure: (spawn mode only) T serves X; caller C sends requests `held` and `kept` to
    X, which T holds. The harness sends the host SIGTERM. C sends request `new` to X, request
    `bad` without a payload and request `nowhere` to an unserved type; C calls RegisterAgent;
    an observer checks health; T then answers `held` and never `kept`.

    Asserts: C and T each receive a Notice with ERROR_CODE_SHUTTING_DOWN; `new` and `nowhere`
    are answered with ERROR_CODE_SHUTTING_DOWN (draining comes before the target lookup),
    `bad` with ERROR_CODE_INVALID_REQUEST (validity comes first), and none reaches T;
    RegisterAgent fails with UNAVAILABLE; health reports NOT_SERVING for
    `agentworker.v1.AgentRpcService`; C receives exactly one response to `held` (T's answer,
    or ERROR_CODE_SHUTTING_DOWN); when the host closes after its grace period, C receives
    exactly one response to `kept`, ERROR_CODE_SHUTTING_DOWN, then C's data channel ends with
    UNAVAILABLE."""
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
        with ctx.step("AWP-CONN-015", f"{worker.label} receives a SHUTTING_DOWN Notice"):
            notice = await worker.expect_notice("a SHUTTING_DOWN notice", within=2.0)
            ctx.check(
                notice.code == pb.ERROR_CODE_SHUTTING_DOWN,
                f"{worker.label}: notice code {pb.ErrorCode.Name(notice.code)}",
            )
    await caller.request(rpc_request("new", agent_type, "k", "y", timeout_ms=30_000))
    with ctx.step(("AWP-CONN-015", "AWP-ERR-004"), "a new request is answered", gate=True):
        resp = await caller.expect_response("new", within=2.0)
    ctx.check_error(
        resp, pb.ERROR_CODE_SHUTTING_DOWN, "request sent while draining", "AWP-CONN-015"
    )
    bad = rpc_request("bad", agent_type, "k", "z")
    bad.ClearField("payload")
    await caller.request(bad)
    with ctx.step("AWP-ERR-021", "an invalid request while draining gets INVALID_REQUEST"):
        resp = await caller.expect_response("bad", within=2.0)
        ctx.check(
            resp.error_code == pb.ERROR_CODE_INVALID_REQUEST,
            f"invalid request while draining: {pb.ErrorCode.Name(resp.error_code)}",
        )
    await caller.request(rpc_request("nowhere", ctx.unique("nobody"), "k", "z"))
    with ctx.step("AWP-ERR-021", "an unserved type while draining gets SHUTTING_DOWN"):
        resp = await caller.expect_response("nowhere", within=2.0)
        ctx.check(
            resp.error_code == pb.ERROR_CODE_SHUTTING_DOWN,
            f"unserved type while draining: {pb.ErrorCode.Name(resp.error_code)}",
        )
    ctx.check_status(
        await caller.register_status(ctx.unique("late")),
        grpc.StatusCode.UNAVAILABLE,
        "RegisterAgent while draining",
        step=("AWP-CONN-025", "RegisterAgent while draining fails with UNAVAILABLE"),
    )
    code, details, health = await observer.unary(
        "",
        health_pb2.HealthCheckRequest(service=CANONICAL_SERVICE),
        health_pb2.HealthCheckResponse,
        path="/grpc.health.v1.Health/Check",
        within=2.0,
    )
    ctx.decide(
        ("AWP-OBS-001", "AWP-CONN-015"),
        "health reports NOT_SERVING while draining",
        code is grpc.StatusCode.OK
        and health is not None
        and health.status == health_pb2.HealthCheckResponse.NOT_SERVING,
        f"health while draining: {code.name} {details!r} {health}",
    )
    stray = [f for f in target.data.take_all() if f.WhichOneof("message") == "request"]
    ctx.decide(
        "AWP-CONN-015",
        "a request sent while draining does not reach T",
        not stray,
        "a request sent while draining reached the target",
    )
    if not target.data.ended:
        await target.respond(pb.RpcResponse(request_id=held.request_id, payload=held.payload))
    with ctx.step(("AWP-CONN-016", "AWP-ERR-004"), "C receives exactly one response to held"):
        await caller.data.expect("one response to `held`", response_to("held"), within=15.0)
        extra = [f for f in await caller.data.settle(0.1) if response_to("held")(f)]
        ctx.check(not extra, "the caller received two responses to `held`")
    # The host may wait its grace period for `kept`, then answers it as it closes (CONN-016).
    with ctx.step("AWP-CONN-016", "a request pending when the host closes gets SHUTTING_DOWN"):
        kept = await caller.expect_response("kept", within=40.0)
        ctx.check(
            kept.error_code == pb.ERROR_CODE_SHUTTING_DOWN and kept.error != "",
            f"`kept` was answered with {pb.ErrorCode.Name(kept.error_code)} {kept.error!r}",
        )
    with ctx.step("AWP-CONN-024", "C's data channel then ends with UNAVAILABLE"):
        end = await caller.data.wait_end(within=15.0)
        ctx.check(
            end is grpc.StatusCode.UNAVAILABLE,
            f"C's data channel ended with {end.name if end else 'nothing (still open)'}",
        )
