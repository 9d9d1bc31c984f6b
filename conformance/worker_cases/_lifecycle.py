"""Worker cases: graceful shutdown and reconnect."""

from __future__ import annotations

import asyncio
import time

import grpc

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._harness_host import Connection
from conformance._payloads import JSON, decode_payload, json_ping_payload
from conformance._worker_context import WorkerContext
from conformance.worker_cases._registry import worker_case
from conformance.worker_cases._rpc import check_pong

__all__: list[str] = []


@worker_case(
    "worker/lifecycle/sigterm-drains",
    requirements=["AWP-CONN-017", "AWP-CONN-023", "AWP-RPC-006", "AWP-CNF-022"],
)
async def sigterm(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) send Command.stall 1500 ms; 300 ms later send SIGTERM to the
    worker; 400 ms after that, while the stall still runs, send a Ping request.

    Asserts: the Ping is answered with ERROR_CODE_SHUTTING_DOWN (a draining worker starts no
    new handler); the stalled command is still answered with CommandResult.stalled_ms 1500 (a
    running handler finishes and its response is sent); the worker then exits with status 0
    within 10 s (scaled) of the signal."""
    ctx.need_process_control("sending SIGTERM")
    conn = await ctx.ready()
    rid = await ctx.command_later(conn, cp.Command(stall=cp.StallAction(duration_ms=1500)))
    await asyncio.sleep(0.3)
    ctx.check(ctx.subject.request_stop(), "the worker is not running")
    ctx.trace.note("harness", "SIGTERM sent")
    await asyncio.sleep(0.4)
    # A worker that ended its channel while a handler still runs did not drain (AWP-CONN-017).
    with ctx.step(
        ("AWP-CONN-017", "AWP-RPC-006"), "a request while draining is answered", gate=True
    ):
        late = await ctx.rpc(conn, json_ping_payload("late", 1), within=1.0)
    ctx.decide(
        ("AWP-CONN-017", "AWP-CONN-023"),
        "a draining worker starts no new handler: ERROR_CODE_SHUTTING_DOWN",
        late.error != "" and late.error_code == pb.ERROR_CODE_SHUTTING_DOWN,
        f"a request that arrived while draining was answered with error {late.error!r} "
        f"{pb.ErrorCode.Name(late.error_code)}, expected ERROR_CODE_SHUTTING_DOWN",
    )
    with ctx.step(("AWP-CONN-017", "AWP-RPC-006"), "the handler running at SIGTERM is answered"):
        response = await ctx.expect_response(rid, within=6.0)
        result, problem = decode_payload(response.payload, cp.CommandResult)
        ctx.check(
            response.error == "" and result is not None and result.stalled_ms == 1500,
            f"the command in flight at SIGTERM was answered with error {response.error!r} / "
            f"{problem}",
        )
    with ctx.step("AWP-CONN-017", "the worker exits within 10 s", gate=True):
        status = await ctx.subject.wait_exit(10.0)
        ctx.check(status is not None, "the worker did not exit within 10 s of SIGTERM")
    ctx.decide(
        "AWP-CNF-022",
        "the worker exits with status 0",
        status == 0,
        f"the worker exited with status {status} after SIGTERM, expected 0",
    )


def _subscription_ids(ctx: WorkerContext, conn: Connection, after: float = 0.0) -> set[str]:
    return {
        call.request.subscription.id
        for call in ctx.host.calls
        if call.client_id == conn.client_id
        and call.method == "AddSubscription"
        and call.at >= after
        and isinstance(call.request, pb.AddSubscriptionRequest)
    }


@worker_case(
    "worker/lifecycle/reconnect",
    requirements=["AWP-CONN-020", "AWP-CONN-021", "AWP-CONN-006"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_RECONNECT,
)
async def reconnect(ctx: WorkerContext) -> None:
    """Procedure: (CAPABILITY_RECONNECT) note the worker's client-id and subscription ids;
    the harness ends the data channel with UNAVAILABLE and refuses the first new OpenChannel
    with ALREADY_EXISTS (the host has not yet noticed the old channel end).

    Asserts: within 10 s (scaled) the worker opens a new data channel with the same
    client-id (retrying after ALREADY_EXISTS, AWP-CONN-021), registers `conformance` again and
    re-adds every subscription with the same ids; it then answers a Ping."""
    conn = await ctx.ready()
    before = _subscription_ids(ctx, conn)
    ctx.host.refuse_opens = 1
    cut = time.monotonic()
    conn.close(grpc.StatusCode.UNAVAILABLE)
    new = await ctx.host.wait_for(
        "new data channel",
        lambda: (c := ctx.subject.current_connection()) is not None and c is not conn and c,
        10.0,
    )
    ctx.decide(
        "AWP-CONN-006",
        "the worker reconnects with the same client-id",
        new.client_id == conn.client_id,
        f"the worker reconnected as {new.client_id!r}, not {conn.client_id!r}",
    )
    ctx.decide(
        "AWP-CONN-021",
        "the OpenChannel refused with ALREADY_EXISTS is retried",
        ctx.host.refuse_opens == 0,
        "the refused OpenChannel was not retried",
    )
    with ctx.step("AWP-CONN-020", "re-registers and re-adds every subscription", gate=True):
        await ctx.host.wait_for(
            "re-registration and every subscription re-added with the same ids",
            lambda: ctx.registration_state(new)[0] and before <= _subscription_ids(ctx, new, cut),
            10.0,
        )
    with ctx.step("AWP-CONN-020", "answers a Ping after reconnecting", gate=True):
        await ctx.ready()
        response = await ctx.rpc(new, json_ping_payload("again", 1))
    check_pong(ctx, response, JSON, "again", 1, "k")
