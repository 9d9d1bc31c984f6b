"""`make cluster-demo` (examples/cluster_demo.py) runs end to end: NATS, three nodes, the greeting
demo and the group chat across them, then the loss of a node and the chat again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The demo bounds itself at 180 s; this leaves it room to report before the test gives up.
DEMO_DEADLINE_S = 240


@pytest.mark.slow
def test_cluster_demo_keeps_the_conversation_going_after_a_node_is_killed() -> None:
    result = subprocess.run(
        [sys.executable, "examples/cluster_demo.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEMO_DEADLINE_S,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert out.rstrip().endswith("cluster demo complete"), out
    # The greeting demo, its two workers on different nodes: five greetings each, in order.
    for role in ("worker1", "worker2"):
        greetings = re.findall(rf"^  \[{role}\] {role}: Hello x (\d+)$", out, re.MULTILINE)
        assert greetings == ["1", "2", "3", "4", "5"], out
    # The group chat before and after the editor's node is killed: both conversations end.
    before, killed, after = out.partition("== killing node n2 (SIGKILL)")
    assert killed, out
    for part in (before, after):
        assert "[ui] conversation complete" in part, out
        assert re.search(r"\[ui\] \[\d+\] editor: APPROVED", part), out
