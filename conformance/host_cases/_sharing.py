"""Host cases: several workers per agent type (capability CAPABILITY_SHARED_AGENT_TYPES)."""

from __future__ import annotations

import asyncio
import hashlib

from agentworker.v1 import agentworker_pb2 as pb
from conformance._builders import rpc_request
from conformance._cases import Level
from conformance._host_context import HostContext
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []

_SHARED = (pb.CAPABILITY_SHARED_AGENT_TYPES,)


async def _members(ctx: HostContext, agent_type: str, count: int) -> list[RawWorker]:
    members = []
    for n in range(count):
        worker = await ctx.connect(f"m{n}", hello=ctx.hello(_SHARED))
        ctx.check(
            worker.welcome is not None
            and pb.CAPABILITY_SHARED_AGENT_TYPES in worker.welcome.capabilities,
            f"m{n}: shared agent types not in force",
        )
        await worker.register(agent_type)
        members.append(worker)
    return members


async def _collect(
    ctx: HostContext, members: list[RawWorker], count: int
) -> list[tuple[RawWorker, pb.RpcRequest]]:
    """Wait (5 s, scaled) until ``count`` requests arrived across ``members``; then wait a
    moment more and fail on any extra request."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.seconds(5.0)
    got: list[tuple[RawWorker, pb.RpcRequest]] = []

    def take() -> None:
        for member in members:
            for frame in member.data.take_all():
                if frame.WhichOneof("message") == "request":
                    got.append((member, frame.request))

    while True:
        take()
        if len(got) >= count:
            break
        ctx.check(loop.time() < deadline, f"only {len(got)} of {count} requests arrived")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    take()
    ctx.check(len(got) == count, f"{len(got)} requests arrived for {count} sent")
    return got


async def _round(
    ctx: HostContext, caller: RawWorker, members: list[RawWorker], agent_type: str, keys: list[str]
) -> dict[str, str]:
    """Send one request per key, answer each, check the caller gets every answer; return
    key -> client-id of the member that received it."""
    ids = {key: ctx.unique("r") for key in keys}
    for key in keys:
        await caller.request(rpc_request(ids[key], agent_type, key, key))
    owner: dict[str, str] = {}
    for member, req in await _collect(ctx, members, len(keys)):
        owner[req.target.key] = member.client_id or ""
        await member.respond(pb.RpcResponse(request_id=req.request_id, payload=req.payload))
    for key in keys:
        resp = await caller.expect_response(ids[key])
        ctx.check(resp.payload.data == key.encode(), f"key {key}: wrong answer {resp}")
    return owner


def _rendezvous(client_ids: list[str], agent_type: str, key: str) -> str:
    """Return the member AWP-SHR-003 chooses: the greatest score, ties to the lower id."""

    def score(cid: str) -> tuple[int, str]:
        digest = hashlib.sha256(f"{cid}\0{agent_type}\0{key}".encode()).digest()
        return -int.from_bytes(digest[:8], "big"), cid

    return min(client_ids, key=score)


_KEYS = [f"key-{n}" for n in range(12)]


@host_case(
    "host/sharing/stable-routing",
    requirements=["AWP-SHR-001", "AWP-SHR-002", "AWP-SHR-004"],
    level=Level.CAPABILITY,
    v1_only=True,
    capability=pb.CAPABILITY_SHARED_AGENT_TYPES,
)
async def stable_routing(ctx: HostContext) -> None:
    """Procedure: three workers announcing CAPABILITY_SHARED_AGENT_TYPES register type T; a
    caller sends one request for each of 12 keys, twice. The member owning `key-0` then
    receives a request for it and disconnects without answering; the caller sends `key-0`
    again.

    Asserts: every request reaches exactly one member; each key reaches the same member in
    both rounds; the held request fails with ERROR_CODE_TARGET_UNAVAILABLE; the last request
    reaches a remaining member."""
    agent_type = ctx.unique("shared")
    members = await _members(ctx, agent_type, 3)
    caller = await ctx.connect("caller")
    with ctx.step("AWP-SHR-001", "every request reaches exactly one member", gate=True):
        first = await _round(ctx, caller, members, agent_type, _KEYS)
        second = await _round(ctx, caller, members, agent_type, _KEYS)
    moved = {k: (first[k], second[k]) for k in _KEYS if first[k] != second[k]}
    ctx.decide(
        "AWP-SHR-002",
        "each key stays with one member while members do not change",
        not moved,
        f"keys moved between rounds with unchanged members: {moved}",
    )
    leaving = next(m for m in members if m.client_id == first["key-0"])
    await caller.request(rpc_request("held", agent_type, "key-0", "x", timeout_ms=30_000))
    await leaving.expect_request("the held request")
    await leaving.disconnect()
    with ctx.step("AWP-SHR-004", "the held request is answered", gate=True):
        resp = await caller.expect_response("held", within=2.0)
    ctx.check_error(
        resp, pb.ERROR_CODE_TARGET_UNAVAILABLE, "request held by a leaving member", "AWP-SHR-004"
    )
    remaining = [m for m in members if m is not leaving]
    with ctx.step("AWP-SHR-004", "the leaving member's key moves to a remaining member"):
        after = await _round(ctx, caller, remaining, agent_type, ["key-0"])
        ctx.check(after["key-0"] != leaving.client_id, "key-0 still routed to the leaving member")


@host_case(
    "host/sharing/rendezvous-hashing",
    requirements=["AWP-SHR-003"],
    level=Level.QUALITY,
    v1_only=True,
    capability=pb.CAPABILITY_SHARED_AGENT_TYPES,
)
async def rendezvous_hashing(ctx: HostContext) -> None:
    """Procedure: three workers announcing CAPABILITY_SHARED_AGENT_TYPES register type T; a
    caller sends one request for each of 12 keys.

    Asserts: each key reaches the member with the greatest rendezvous score:
    SHA-256(client_id 0x00 agent_type 0x00 key), first 8 bytes big-endian."""
    agent_type = ctx.unique("hashed")
    members = await _members(ctx, agent_type, 3)
    caller = await ctx.connect("caller")
    owners = await _round(ctx, caller, members, agent_type, _KEYS)
    ids = [m.client_id or "" for m in members]
    wrong = {
        key: owner for key, owner in owners.items() if owner != _rendezvous(ids, agent_type, key)
    }
    ctx.decide(
        "AWP-SHR-003",
        "each key is at its rendezvous member",
        not wrong,
        f"keys not at their rendezvous member: {sorted(wrong)}",
    )
