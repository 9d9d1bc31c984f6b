"""The hosts under test, each a subprocess on a free 127.0.0.1 port, and their CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import grpc

from . import clientenv
from .clients import MODE_BATCHED, MODE_LEGACY

REPO: Final = Path(__file__).resolve().parent.parent
AUTOGEN_DIR: Final = REPO / "interop" / "autogen"
AUTOGEN_PYTHON: Final = AUTOGEN_DIR / ".venv" / "bin" / "python"
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 10.0

KIND_RELAY: Final = "relay"
KIND_AUTOGEN: Final = "autogen"
KIND_OURS: Final = "reference_host"
# Which virtualenv runs the host: the project's (grpcio of pyproject.toml) or AutoGen's.
VENV_OURS: Final = "project"
VENV_AUTOGEN: Final = "autogen"


@dataclass(frozen=True)
class Subject:
    """One column of the comparison: a host process and the clients that drive it."""

    name: str
    kind: str
    mode: str
    description: str
    venv: str = VENV_OURS
    # Extra environment of the host process.
    env: tuple[tuple[str, str], ...] = ()


RELAY: Final = Subject("relay", KIND_RELAY, MODE_LEGACY, "bare grpc.aio relay (bench/relay.py)")
RELAY_AGVENV: Final = Subject(
    "relay_agvenv",
    KIND_RELAY,
    MODE_LEGACY,
    "the same relay run by interop/autogen/.venv (AutoGen's grpcio)",
    VENV_AUTOGEN,
)
AUTOGEN: Final = Subject(
    "autogen",
    KIND_AUTOGEN,
    MODE_LEGACY,
    "AutoGen 0.7.5 GrpcWorkerAgentRuntimeHost",
    VENV_AUTOGEN,
)
AUTOGEN_B: Final = Subject(
    "autogen_b",
    KIND_AUTOGEN,
    MODE_LEGACY,
    "AutoGen's host again, a second process (noise band)",
    VENV_AUTOGEN,
)
# gRPC core experiments that move Python's I/O onto EventEngine threads: on by default in grpcio
# 1.85, off in AutoGen's 1.70. The reference host's CLI turns them off unless GRPC_EXPERIMENTS
# is set (reference_host/_io_defaults.py); an empty value keeps gRPC's defaults.
NO_EVENT_ENGINE: Final = (("GRPC_EXPERIMENTS", "-event_engine_client,-event_engine_listener"),)
GRPC_DEFAULTS: Final = (("GRPC_EXPERIMENTS", ""),)
OURS: Final = Subject(
    "ours",
    KIND_OURS,
    MODE_LEGACY,
    "reference_host as its CLI runs it (gRPC I/O on the Python thread), legacy path, "
    "unbatched clients",
)
OURS_BATCHED: Final = Subject(
    "ours_batched",
    KIND_OURS,
    MODE_BATCHED,
    "reference_host as its CLI runs it, v1 path, clients with CAPABILITY_BATCHING",
)
OURS_EE: Final = Subject(
    "ours_ee",
    KIND_OURS,
    MODE_LEGACY,
    "reference_host with gRPC's default EventEngine I/O (GRPC_EXPERIMENTS empty), legacy path",
    env=GRPC_DEFAULTS,
)
RELAY_NOEE: Final = Subject(
    "relay_noee",
    KIND_RELAY,
    MODE_LEGACY,
    "the relay with the host's gRPC I/O setting "
    "(GRPC_EXPERIMENTS=-event_engine_client,-event_engine_listener)",
    env=NO_EVENT_ENGINE,
)
ALL_SUBJECTS: Final = (
    RELAY,
    RELAY_NOEE,
    RELAY_AGVENV,
    AUTOGEN,
    AUTOGEN_B,
    OURS,
    OURS_BATCHED,
    OURS_EE,
)
# What a run measures unless told otherwise. relay_noee is the relay with our host's gRPC
# setting; relay_agvenv separates the effect of AutoGen's older grpcio from the effect of its
# host's design. ours_ee is optional.
DEFAULT_SUBJECTS: Final = (
    RELAY,
    RELAY_NOEE,
    RELAY_AGVENV,
    AUTOGEN,
    AUTOGEN_B,
    OURS,
    OURS_BATCHED,
)
BY_NAME: Final = {subject.name: subject for subject in ALL_SUBJECTS}

_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stat_cpu_seconds(pid: int | str) -> float:
    """Return utime + stime of process ``pid`` (all its threads) from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = text[text.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def schedstat_cpu_seconds(pid: int | str) -> float | None:
    """Return the CPU time of ``pid``'s live threads in ns resolution, or None if unavailable."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores spent busy since boot (/proc/stat, idle and iowait out)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(value) for value in fields[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU time of a process: coarse (/proc/pid/stat, in clock ticks) and fine (schedstat)."""

    stat_s: float
    sched_s: float | None


def cpu_sample(pid: int | str) -> CpuSample:
    """Read both CPU clocks of ``pid``."""
    return CpuSample(stat_cpu_seconds(pid), schedstat_cpu_seconds(pid))


def cpu_between(before: CpuSample, after: CpuSample) -> float:
    """CPU seconds used between two samples.

    schedstat has nanosecond resolution but forgets threads that exited; /proc/pid/stat keeps
    them but counts clock ticks (10 ms). Use schedstat unless stat shows clearly more time.
    """
    coarse = after.stat_s - before.stat_s
    if before.sched_s is None or after.sched_s is None:
        return coarse
    fine = after.sched_s - before.sched_s
    if coarse - fine > 3.0 / _CLOCK_TICKS:
        return coarse
    return fine


class HostProcess:
    """A host subprocess serving on a free loopback port."""

    def __init__(self, subject: Subject, log_dir: Path) -> None:
        self.subject = subject
        self.port = 0
        self.address = ""
        self._log_dir = log_dir
        self._log: IO[bytes] | None = None
        self._log_path = log_dir / f"{subject.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the host's process id."""
        assert self._process is not None
        return self._process.pid

    def command(self) -> list[str]:
        """Return the command line that starts this host on ``self.address``."""
        kind = self.subject.kind
        python = str(AUTOGEN_PYTHON) if self.subject.venv == VENV_AUTOGEN else sys.executable
        if kind == KIND_RELAY:
            return [python, "-I", str(REPO / "bench" / "relay.py"), "--address", self.address]
        if kind == KIND_OURS:
            return [
                sys.executable,
                "-m",
                "reference_host",
                "--address",
                self.address,
                "--drain-grace-ms",
                "0",
            ]
        if kind == KIND_AUTOGEN:
            script = str(REPO / "bench" / "autogen_host.py")
            return [python, "-I", script, "--address", self.address]
        raise ValueError(f"unknown host kind {kind!r}")

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process on a free port (``start`` also waits until it serves)."""
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        clientenv.restore_for_host(env)
        env.update(self.subject.env)
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            self.command(),
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self._process

    async def start(self) -> None:
        """Start the process and wait until it accepts gRPC connections."""
        process = self.spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        async with grpc.aio.insecure_channel(self.address) as channel:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{self.subject.name} exited with {process.returncode}:\n" + self.log_tail()
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"{self.subject.name} did not start:\n{self.log_tail()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(channel.channel_ready(), min(0.5, remaining))
                    return

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self._process is not None and self._process.poll() is None

    def cpu(self) -> CpuSample:
        """Sample the host's CPU time."""
        return cpu_sample(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the host's output."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the process, then SIGKILL it if it does not exit in time."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None


def ensure_autogen() -> None:
    """Create interop/autogen/.venv with its own setup script (instant when it exists)."""
    result = subprocess.run(
        [str(AUTOGEN_DIR / "setup.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0 or not AUTOGEN_PYTHON.exists():
        raise RuntimeError(f"interop/autogen/setup.sh failed:\n{result.stdout}\n{result.stderr}")


def make_log_dir() -> Path:
    """Return a fresh directory for host logs."""
    return Path(tempfile.mkdtemp(prefix="agentworker-bench-"))
