"""AutoGen workers coming and going, and calls that no AutoGen host would ever end.

AutoGen's runtime has no RPC timeout: a call ends only when a response arrives. Our host makes
sure one always does (an error string AutoGen raises as an exception) when the target worker
goes away, when no worker serves the target type, and when the target never answers.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from interop_messages import Nothing, Pong, Stall

from reference_host import Host
from reference_worker import (
    AgentId,
    DeadlineExceededError,
    TargetUnavailableError,
)
from tests.interop._autogen import AutoGenProcess, event_is
from tests.interop._messages import OurAgent, Unknown
from tests.interop.conftest import StartAutoGen, WorkerFactory

pytestmark = pytest.mark.asyncio

SERVICE = ("ag_svc", "k")


async def start_service(autogen: StartAutoGen, name: str) -> AutoGenProcess:
    return await autogen("mixed_worker.py", "--agent-type", "ag_svc", "--stdin-lifeline", name=name)


async def ping(caller: AutoGenProcess, text: str) -> dict[str, object]:
    return await caller.call(SERVICE, "Ping", {"text": text, "seq": 1}, timeout=15.0)


@pytest.mark.requirement("AWP-CONN-018", "AWP-ERR-004", "AWP-REG-001", "AWP-RPC-003")
async def test_autogen_worker_stops_and_a_new_one_takes_over(
    host: Host, autogen: StartAutoGen, make_worker: WorkerFactory
) -> None:
    caller = await autogen("caller.py", "--name", "caller", name="caller")
    ours = await make_worker()
    ours.add_message_type(Pong)
    first = await start_service(autogen, "first")

    result = await ping(caller, "before")
    assert result["ok"] is True, result
    assert first.matching(event_is("rpc"))

    # Calls in flight when the worker dies (SIGKILL: nothing is closed politely) fail with the
    # host's error, for AutoGen callers and ours alike, instead of waiting forever.
    stalled = [
        await caller.start_call(SERVICE, "Stall", {"seconds": 120, "text": f"s{n}"}, timeout=60)
        for n in range(3)
    ]
    ours_stalled = asyncio.create_task(
        ours.send(Stall(120, "ours"), AgentId(*SERVICE), timeout=60.0)
    )
    await first.wait_for_count(event_is("stalling"), 4, within=20.0)
    killed_at = time.monotonic()
    await first.kill()

    for call_id in stalled:
        result = await caller.result(call_id, within=20.0)
        assert result["ok"] is False, result
        assert result["timed_out"] is False
        assert "disconnected before answering" in str(result["error"])
    with pytest.raises(TargetUnavailableError, match="disconnected before answering"):
        await ours_stalled
    assert time.monotonic() - killed_at < 15.0
    assert host.metrics.rpc_errors.get("ERROR_CODE_TARGET_UNAVAILABLE") == 4

    # A new process registers the same type and serves it.
    second = await start_service(autogen, "second")
    result = await ping(caller, "after restart")
    assert result["ok"] is True, result
    assert [line["body"]["text"] for line in second.matching(event_is("rpc"))] == ["after restart"]

    # A graceful stop (SIGTERM: AutoGen's stop_when_signal) unregisters the type...
    assert await second.terminate() == 0
    assert second.matching(event_is("stopped", reason="SIGTERM"))
    result = await ping(caller, "while stopped")
    assert result["ok"] is False
    assert result["error"] == "no worker serves agent type 'ag_svc'"

    # ... and the type can be registered again.
    third = await start_service(autogen, "third")
    result = await ping(caller, "third time")
    assert result["ok"] is True, result
    assert third.matching(event_is("rpc"))


@pytest.mark.requirement("AWP-REG-003", "AWP-REG-005")
async def test_second_autogen_worker_for_a_served_type_is_refused(
    host: Host, autogen: StartAutoGen
) -> None:
    await start_service(autogen, "owner")
    intruder = await AutoGenProcess.start(
        "mixed_worker.py",
        "--host",
        f"127.0.0.1:{host.port}",
        "--agent-type",
        "ag_svc",
        "--stdin-lifeline",
        name="intruder",
    )
    try:
        refused = await intruder.wait_for(event_is("refused"), within=30.0)
        assert refused["code"] == "ALREADY_EXISTS"
        assert "ag_svc" in refused["details"]
        assert await intruder.wait_exit(within=20.0) == 2
    finally:
        await intruder.close()


@pytest.mark.requirement("AWP-RPC-003", "AWP-ERR-002", "AWP-ERR-004")
async def test_autogen_call_to_an_unknown_type_gets_the_hosts_error(
    host: Host, autogen: StartAutoGen
) -> None:
    caller = await autogen("caller.py", "--name", "caller", name="caller")
    result = await caller.call(("nobody", "k"), "Ping", {"text": "anyone?", "seq": 1}, timeout=15)
    assert result["ok"] is False
    assert result["timed_out"] is False
    assert result["error"] == "no worker serves agent type 'nobody'"
    assert float(str(result["seconds"])) < 10.0  # at once, not at some deadline
    assert host.metrics.rpc_errors == {"ERROR_CODE_UNKNOWN_TARGET": 1}

    # An AutoGen agent calling an unknown type gets the same error back.
    mixed = await autogen("mixed_worker.py", "--agent-type", "ag_mixed", "--stdin-lifeline")
    result = await caller.call(
        ("ag_mixed", "relay"),
        "CallRequest",
        {"target_type": "nobody", "target_key": "k", "text": "x", "timeout": 10.0},
    )
    assert result["ok"] is True, result
    assert result["reply"] == {
        "ok": False,
        "text": "",
        "seq": 0,
        "agent_key": "",
        "reply_type": "",
        "error": "no worker serves agent type 'nobody'",
    }
    assert mixed.matching(event_is("called"))


@pytest.mark.requirement("AWP-RPC-010", "AWP-ERR-004")
@pytest.mark.parametrize("host", [{"default_rpc_timeout_ms": 1500}], indirect=True)
async def test_calls_nobody_answers_end_at_the_hosts_deadline(
    host: Host, autogen: StartAutoGen, make_worker: WorkerFactory
) -> None:
    # AutoGen's requests carry no deadline, so the host's default applies.
    worker = await make_worker()
    await worker.register("ours", OurAgent)
    caller = await autogen("caller.py", "--name", "caller", name="caller")
    result = await caller.call(("ours", "k"), "Stall", {"seconds": 30, "text": "late"}, timeout=20)
    assert result["ok"] is False
    assert result["timed_out"] is False
    assert result["error"] == "no response within 1500 ms"

    # An AutoGen worker sends no response at all for a payload type it does not know, nor for
    # a handler that returns None (it cannot encode None); the host's deadline ends such calls.
    mixed = await autogen("mixed_worker.py", "--agent-type", "ag_mixed", "--stdin-lifeline")
    for message in (Unknown("what is this?"), Nothing("return None")):
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await worker.send(message, AgentId("ag_mixed", "k"), timeout=2.0)
        assert time.monotonic() - started < 8.0
    assert [line["type"] for line in mixed.matching(event_is("rpc"))] == ["Nothing"]
