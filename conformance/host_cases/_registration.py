"""Host cases: agent-type registration."""

from __future__ import annotations

import asyncio

import grpc

from conformance._builders import rpc_request
from conformance._host_context import HostContext
from conformance.host_cases._registry import host_case

__all__: list[str] = []


@host_case("host/registration/type-names", requirements=["AWP-REG-002", "AWP-REG-005"])
async def type_names(ctx: HostContext) -> None:
    """Procedure: register types "", "has space", "a/b", "ünï", a 256-character type, then a
    255-character type and one using every allowed character class (`A-Z a-z 0-9 _ . -`).

    Asserts: the invalid ones fail with INVALID_ARGUMENT (the status message naming the
    short ASCII ones); the valid ones succeed."""
    worker = await ctx.connect("w")
    suffix = ctx.unique("x").replace(".", "_")
    # Step names use the labels, not the types: the types carry this run's unique suffix.
    invalid = {
        "the empty type": "",
        "a type with a space": "has space " + suffix,
        "a type with a slash": "a/b" + suffix,
        "a non-ASCII type": "ünï" + suffix,
        "a 256-character type": "t" * 256,
    }
    for what, bad in invalid.items():
        code, details = await worker.register_status(bad)
        ctx.check_status(
            (code, details),
            grpc.StatusCode.INVALID_ARGUMENT,
            what,
            step=("AWP-REG-002", f"{what}: INVALID_ARGUMENT"),
        )
        if bad.isascii() and 0 < len(bad) < 100:
            ctx.decide(
                "AWP-REG-005",
                f"{what}: the status message names it",
                bad in details,
                f"status message {details!r} does not name {bad!r}",
            )
    long_ok = (suffix + "L" * 255)[:255]
    for good in (long_ok, "Az09_.-" + suffix):
        with ctx.step("AWP-REG-002", f"a valid {len(good)}-character type registers"):
            await worker.register(good)


@host_case(
    "host/registration/conflict",
    requirements=["AWP-REG-003", "AWP-REG-005", "AWP-REG-001"],
)
async def conflict(ctx: HostContext) -> None:
    """Procedure: worker A registers type T; worker B (not announcing shared types) registers
    T; B sends a request to T.

    Asserts: B's registration fails with ALREADY_EXISTS naming T; the request reaches A."""
    agent_type = ctx.unique("conflict")
    first = await ctx.serving("a", agent_type)
    second = await ctx.connect("b")
    code, details = await second.register_status(agent_type)
    ctx.check_status(
        (code, details),
        grpc.StatusCode.ALREADY_EXISTS,
        "second registration",
        step=("AWP-REG-003", "a second registrant gets ALREADY_EXISTS"),
    )
    ctx.decide(
        "AWP-REG-005",
        "the status message names the type",
        agent_type in details,
        f"status message {details!r} does not name {agent_type}",
    )
    await second.request(rpc_request("r1", agent_type, "k", "hi"))
    with ctx.step(("AWP-REG-001", "AWP-REG-003"), "the request reaches the first registrant"):
        await first.expect_request("the request, at the first registrant")


@host_case("host/registration/idempotent", requirements=["AWP-CONN-022", "AWP-REG-001"])
async def idempotent(ctx: HostContext) -> None:
    """Procedure: worker A registers type T three times; a caller sends a request to T.

    Asserts: every registration succeeds; A receives the request exactly once."""
    agent_type = ctx.unique("idem")
    worker = await ctx.connect("a")
    with ctx.step("AWP-CONN-022", "three registrations succeed", gate=True):
        for _ in range(3):
            await worker.register(agent_type)
    caller = await ctx.connect("caller")
    await caller.request(rpc_request("r1", agent_type, "k", "hi"))
    with ctx.step(("AWP-REG-001", "AWP-CONN-022"), "A receives the request exactly once"):
        await worker.expect_request()
        rest = await worker.data.settle(0.2)
        ctx.check(not rest, f"A received {len(rest)} extra frames")


@host_case("host/registration/before-channel", requirements=["AWP-CONN-008"])
async def before_channel(ctx: HostContext) -> None:
    """Procedure: worker A calls RegisterAgent for type T before opening its data channel,
    and opens the channel 300 ms later; a caller then sends a request to T.

    Asserts: the registration succeeds (the host waits for the channel) and the request
    reaches A."""
    agent_type = ctx.unique("early")
    worker = ctx.worker("a")
    registration = asyncio.ensure_future(worker.register_status(agent_type))
    await asyncio.sleep(0.3)
    await worker.open()
    ctx.check_status(
        await registration,
        grpc.StatusCode.OK,
        "RegisterAgent before the channel",
        step=("AWP-CONN-008", "the early registration succeeds"),
    )
    caller = await ctx.connect("caller")
    await caller.request(rpc_request("r1", agent_type, "k", "hi"))
    with ctx.step("AWP-CONN-008", "the request reaches A"):
        await worker.expect_request()
