"""Unchanged AutoGen 0.7.5 workers on different nodes call and publish to each other
(AWP-CLU-014)."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import StartNode
from tests.interop._autogen import AutoGenProcess, event_is
from tests.interop.conftest import autogen_venv

pytestmark = pytest.mark.asyncio

__all__ = ["autogen_venv"]

START_S = 30.0


@pytest.mark.slow
@pytest.mark.requirement("AWP-CLU-014", "AWP-CLU-003", "AWP-CLU-002")
async def test_autogen_workers_on_different_nodes_call_and_publish(
    autogen_venv: str, start_node: StartNode
) -> None:
    a, b = await start_node("a"), await start_node("b")
    processes: list[AutoGenProcess] = []
    try:
        target = await AutoGenProcess.start(
            "mixed_worker.py", "--host", f"127.0.0.1:{a.port}", "--agent-type", "target",
            "--topic-type", "news", "--stdin-lifeline", name="target",
        )  # fmt: skip
        processes.append(target)
        await target.wait_for(event_is("ready"), within=START_S)
        caller = await AutoGenProcess.start(
            "caller.py", "--host", f"127.0.0.1:{b.port}", "--name", "caller", name="caller"
        )
        processes.append(caller)
        await caller.wait_for(event_is("ready"), within=START_S)
        for seq in (1, 2, 3):
            result = await caller.call(("target", "k"), "Ping", {"text": f"hi-{seq}", "seq": seq})
            assert result["ok"] is True, caller.diagnostics()
            assert result["reply"] == {"text": f"hi-{seq}", "seq": seq, "agent_key": "k"}
        await caller.send(
            {
                "op": "publish",
                "topic": ["news", "s"],
                "type": "Ping",
                "body": {"text": "n", "seq": 9},
            }
        )
        received = await target.wait_for(event_is("received"), within=START_S)
        assert received["topic"] == ["news", "s"], target.diagnostics()
    finally:
        for process in processes:
            await process.close()
