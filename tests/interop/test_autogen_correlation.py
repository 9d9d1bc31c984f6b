"""Two AutoGen callers whose request ids collide each get their own replies (AWP-RPC-004).

AutoGen numbers a worker's requests with a counter that starts at 1 in every process, so two
fresh AutoGen workers send the same ids. The target holds every call until all of them have
arrived (a rendezvous), so each id is in flight from both callers at once; each reply repeats
its caller's name, so a reply delivered to the wrong caller would show. Our worker handles one
message at a time per agent (AWP-CONN-040), so there every call goes to an agent of its own;
AutoGen's runs them concurrently on one agent.
"""

from __future__ import annotations

import asyncio

import pytest

from reference_host import Host
from tests.interop._autogen import AutoGenProcess
from tests.interop._messages import OurAgent
from tests.interop.conftest import StartAutoGen, WorkerFactory

pytestmark = pytest.mark.asyncio

CALLS_EACH = 8


def target_key(shared: bool, name: str, seq: int) -> str:
    return "shared-key" if shared else f"{name}-{seq}"


async def call_all(
    caller: AutoGenProcess, agent_type: str, shared: bool, parties: int
) -> list[str]:
    ids = []
    for seq in range(1, CALLS_EACH + 1):
        target = (agent_type, target_key(shared, caller.name, seq))
        body = {
            "group": "all",
            "parties": parties,
            "text": f"{caller.name}-{seq}",
            "seq": seq,
            "timeout": 20.0,
        }
        ids.append(await caller.start_call(target, "Rendezvous", body, timeout=30.0))
    return ids


@pytest.mark.requirement("AWP-RPC-004", "AWP-RPC-007")
@pytest.mark.parametrize("target_side", ["reference_worker", "autogen"])
async def test_colliding_request_ids_get_their_own_replies(
    target_side: str, host: Host, autogen: StartAutoGen, make_worker: WorkerFactory
) -> None:
    if target_side == "autogen":
        await autogen("mixed_worker.py", "--agent-type", "target", "--stdin-lifeline")
    else:
        OurAgent.groups = {}
        worker = await make_worker()
        await worker.register("target", OurAgent)
    alice, bob = await asyncio.gather(
        autogen("caller.py", "--name", "alice", name="alice"),
        autogen("caller.py", "--name", "bob", name="bob"),
    )

    shared = target_side == "autogen"
    alice_ids, bob_ids = await asyncio.gather(
        call_all(alice, "target", shared, parties=2 * CALLS_EACH),
        call_all(bob, "target", shared, parties=2 * CALLS_EACH),
    )
    alice_results = [await alice.result(call_id, within=40.0) for call_id in alice_ids]
    bob_results = [await bob.result(call_id, within=40.0) for call_id in bob_ids]

    # Both callers put the same request ids on the wire, all in flight together.
    expected_ids = {str(n) for n in range(1, CALLS_EACH + 1)}
    assert {r["request_id"] for r in alice_results} == expected_ids
    assert {r["request_id"] for r in bob_results} == expected_ids

    for name, results in (("alice", alice_results), ("bob", bob_results)):
        for seq, result in enumerate(results, start=1):
            assert result["ok"] is True, result
            assert result["reply"] == {
                "text": f"{name}-{seq}",
                "seq": seq,
                "agent_key": target_key(shared, name, seq),
            }
    assert host.metrics.rpc_requests == 2 * CALLS_EACH
    assert host.metrics.rpc_responses == 2 * CALLS_EACH
    assert host.metrics.rpc_errors == {}
