"""The local cluster launcher (reference_host/cluster/local.py) cleans up after a failed start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

_START_TIMEOUT_S = 120.0


def _session_members(session: int) -> list[int]:
    """Return the pids of the live processes in ``session`` (field 6 of /proc/PID/stat)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (after the command name); the session id is 4 fields on.
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def test_a_node_that_fails_to_start_leaves_no_nats_or_node_behind() -> None:
    launcher = subprocess.Popen(  # our own interpreter and module
        [sys.executable, "-m", "reference_host.cluster.local", "--nodes", "2", "--",
         "--no-such-option"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        _, stderr = launcher.communicate(timeout=_START_TIMEOUT_S)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    assert launcher.returncode != 0
    assert "exited with" in stderr
    # NATS and the node that did start ran in the launcher's session; none outlives it.
    assert _session_members(launcher.pid) == []
