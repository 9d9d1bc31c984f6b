"""The implementation under test: one already running (attach), or one the harness starts,
watches and restarts (spawn)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from pathlib import Path
from typing import IO, Protocol

import grpc

__all__ = [
    "AttachedSubject",
    "PlaintextInsteadOfTls",
    "SpawnedSubject",
    "Subject",
    "SubjectError",
    "free_port",
    "log_size",
    "read_log",
]

LISTEN_ADDRESS_ENV = "AGENTWORKER_LISTEN_ADDRESS"
# A spawned host cluster prints this line, then every node's address (comma-separated, the
# first being {address}), before its first node listens; cases then spread workers over them.
ADDRESSES_LINE = "AGENTWORKER_ADDRESSES="


def announced_addresses(output: str) -> tuple[str, ...]:
    """Return the node addresses a spawned cluster announced in ``output`` (empty if none)."""
    for line in output.splitlines():
        if line.startswith(ADDRESSES_LINE):
            return tuple(a for a in line[len(ADDRESSES_LINE) :].strip().split(",") if a)
    return ()


class SubjectError(Exception):
    """The subject cannot be reached or started."""


class PlaintextInsteadOfTls(SubjectError):
    """A subject started to serve TLS serves plaintext gRPC on its address instead."""


class Subject(Protocol):
    """What the runner needs from a subject."""

    @property
    def address(self) -> str:
        """Return HOST:PORT where the subject listens now."""
        ...

    @property
    def description(self) -> str:
        """Describe the subject for reports."""
        ...

    def replay_args(self) -> list[str]:
        """Return the command-line arguments that select this subject again."""
        ...

    async def start(self) -> None:
        """Start (or reach) the subject; raise SubjectError when impossible."""
        ...

    def output_size(self) -> int:
        """Return how many bytes the subject has written to stdout/stderr (0 if unknown)."""
        ...

    def output_since(self, offset: int) -> str:
        """Return what the subject wrote after ``offset`` bytes ("" if unknown)."""
        ...

    def request_stop(self) -> bool:
        """Ask the subject to drain and stop (SIGTERM); return False when the harness does not
        control the subject's process."""
        ...

    async def after_case(self, failed: bool) -> str | None:
        """Return a message when the subject crashed during the case just run (and restart
        it for the next case), else None."""
        ...

    async def stop(self) -> None:
        """Stop the subject if the harness started it."""
        ...


def _channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, credentials)


async def _wait_ready(
    address: str, within: float, credentials: grpc.ChannelCredentials | None = None
) -> bool:
    async with _channel(address, credentials) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), within)
        except TimeoutError:
            return False
    return True


class AttachedSubject:
    """A host that is already running at ``address``."""

    def __init__(self, address: str, *, scale: float = 1.0, others: tuple[str, ...] = ()) -> None:
        self._address = address
        self._scale = scale
        # With ``others``: the nodes of a host cluster, the first being ``address``.
        self.addresses: tuple[str, ...] = (address, *others) if others else ()

    @property
    def address(self) -> str:
        """Return the address given."""
        return self._address

    @property
    def description(self) -> str:
        """Describe the subject."""
        if self.addresses:
            return f"attached to a host cluster at {', '.join(self.addresses)}"
        return f"attached to {self._address}"

    def replay_args(self) -> list[str]:
        """Return ``--address ADDRESS`` (once per node of a cluster)."""
        return [
            arg for address in self.addresses or (self._address,) for arg in ("--address", address)
        ]

    async def start(self) -> None:
        """Check that the address accepts a gRPC connection within 5 s (scaled)."""
        for address in self.addresses or (self._address,):
            if not await _wait_ready(address, 5.0 * self._scale):
                raise SubjectError(f"no gRPC server answers at {address}")

    def output_size(self) -> int:
        """An attached subject's output is not seen."""
        return 0

    def output_since(self, offset: int) -> str:
        """An attached subject's output is not seen."""
        return ""

    def request_stop(self) -> bool:
        """The harness does not control an attached subject."""
        return False

    async def after_case(self, failed: bool) -> str | None:
        """An attached subject is not watched."""
        return None

    async def stop(self) -> None:
        """Leave the subject running."""


def _substitute(arg: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        arg = arg.replace("{" + name + "}", value)
    return arg


def log_size(path: Path | None) -> int:
    """Return the size of a subject's log file in bytes (0 when there is none)."""
    if path is None or not path.exists():
        return 0
    return path.stat().st_size


def read_log(path: Path | None, offset: int = 0) -> str:
    """Return what a subject's log file holds after ``offset`` bytes ("" when there is none)."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", errors="replace")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SpawnedSubject:
    """A host the harness starts with ``command``, where ``{port}`` and ``{address}`` are
    replaced by a free port and ``127.0.0.1:<port>``; the address is also passed in the
    environment as AGENTWORKER_LISTEN_ADDRESS. Its stderr (and stdout) go to a log file; a
    crash is attributed to the running case and the subject is restarted.

    ``placeholders`` maps further ``{name}`` strings to their values (paths of TLS material,
    a token file); ``credentials`` are what the readiness check connects with (a TLS host)."""

    def __init__(
        self,
        command: list[str],
        *,
        scale: float = 1.0,
        placeholders: dict[str, str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        if not command:
            raise ValueError("empty subject command")
        self._command = command
        self._scale = scale
        self._placeholders = dict(placeholders or {})
        self._credentials = credentials
        self._address = ""
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._stop_requested = False
        self.starts = 0
        # The nodes of a spawned host cluster, as it announced them (see ADDRESSES_LINE).
        self.addresses: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """Return the address of the current process."""
        return self._address

    @property
    def description(self) -> str:
        """Describe the subject by its command."""
        return "spawned: " + " ".join(self._command)

    def replay_args(self) -> list[str]:
        """Return ``-- COMMAND...``."""
        return ["--", *self._command]

    def stderr_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines the subject wrote."""
        return "\n".join(self.output_since(0).splitlines()[-lines:])

    def output_size(self) -> int:
        """Return how many bytes the current process has written."""
        return log_size(self._log_path)

    def output_since(self, offset: int) -> str:
        """Return what the current process wrote after ``offset`` bytes."""
        return read_log(self._log_path, offset)

    async def start(self) -> None:
        """Start the process and wait (10 s, scaled) until its port accepts connections."""
        port = free_port()
        self._address = f"127.0.0.1:{port}"
        values = {**self._placeholders, "port": str(port), "address": self._address}
        argv = [_substitute(arg, values) for arg in self._command]
        env = dict(os.environ)
        env[LISTEN_ADDRESS_ENV] = self._address
        self._close_log()
        fd, name = tempfile.mkstemp(prefix="conformance-subject-", suffix=".log")
        self._log_path = Path(name)
        self._log = os.fdopen(fd, "wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env
            )
        except OSError as exc:
            self._close_log()
            raise SubjectError(f"cannot start {argv[0]!r}: {exc}") from exc
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0 * self._scale
        while loop.time() < deadline:
            if self._process.returncode is not None:
                message = (
                    f"the subject exited with status {self._process.returncode} before "
                    f"listening on {self._address}\n{self.stderr_tail()}"
                ).strip()
                await self.stop()
                raise SubjectError(message)
            if await self._port_open(port) and await _wait_ready(
                self._address, max(1.0, deadline - loop.time()), self._credentials
            ):
                self.addresses = announced_addresses(self.output_since(0))
                return
            await asyncio.sleep(0.05)
        if self._credentials is not None and await _wait_ready(self._address, 1.0 * self._scale):
            # Told apart from a host that does not serve at all (AWP-SEC-001, not only CNF-020).
            message = f"{self._address} serves plaintext gRPC, not TLS\n{self.stderr_tail()}"
            await self.stop()
            raise PlaintextInsteadOfTls(message.strip())
        message = (
            f"the subject did not listen on {self._address} within "
            f"{10.0 * self._scale:.0f} s\n{self.stderr_tail()}"
        ).strip()
        await self.stop()
        raise SubjectError(message)

    @staticmethod
    async def _port_open(port: int) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def request_stop(self) -> bool:
        """Send SIGTERM to the subject; after the case it is awaited and restarted."""
        if self._process is None or self._process.returncode is not None:
            return False
        self._stop_requested = True
        self._process.terminate()
        return True

    async def after_case(self, failed: bool) -> str | None:
        """Detect an exit during the case (waiting up to 0.5 s after a failure, since the
        exit may lag the failure it causes) and restart the subject; restart it after any
        failed case too. A stop the case asked for is no crash: the subject gets 15 s
        (scaled) to exit, then is killed."""
        process = self._process
        if process is None:
            return None
        if self._stop_requested:
            self._stop_requested = False
            try:
                await asyncio.wait_for(process.wait(), 15.0 * self._scale)
            except TimeoutError:
                process.kill()
                await process.wait()
            await self.start()
            return None
        if failed and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.5 * self._scale)
        if process.returncode is None:
            if failed:
                # A failed case may leave the host busy or inconsistent (AutoGen's host spends
                # seconds on 60,000 queued requests); a fresh process keeps the failure from
                # spilling into the next case.
                await self.stop()
                await self.start()
            return None
        message = (
            f"the subject exited with status {process.returncode} during this case; "
            f"its last output:\n{self.stderr_tail()}"
        ).strip()
        await self.start()
        return message

    async def stop(self) -> None:
        """Terminate the process (kill it after 5 s, scaled, or when the stop is cancelled,
        so no process outlives the run)."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0 * self._scale)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):  # it may exit meanwhile
                    process.kill()
                await process.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                self._close_log()
                raise
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None
