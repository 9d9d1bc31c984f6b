"""The examples run end to end as separate processes."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.worker.conftest import PYTHON, ROOT, subprocess_env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.slow
def test_greeting_demo_prints_ten_greetings_and_exits_zero() -> None:
    result = _run("examples/greeting_demo.py", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10, result.stdout
    for role in ("worker1", "worker2"):
        mine = [line for line in lines if line.startswith(f"{role}:")]
        assert mine == [f"{role}: Hello x {n}" for n in range(1, 6)]


@pytest.mark.slow
def test_group_chat_prints_the_whole_conversation() -> None:
    result = _run("examples/group_chat/run.py", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "conversation complete"
    turns = [line for line in lines if re.match(r"^\[\d+\] ", line)]
    assert [line.split("] ")[1].split(":")[0] for line in turns] == [
        "user",
        "writer",
        "editor",
        "writer",
        "editor",
        "writer",
        "editor",
    ]
    assert "APPROVED" in turns[-1]
