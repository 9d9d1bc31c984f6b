"""The worker under test: one the harness starts (spawn) or one the user starts and points at
the harness's host (attach). Either way the harness host runs for the whole suite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from pathlib import Path
from typing import IO

import grpc

from conformance._harness_host import Connection, HarnessHost
from conformance._subject import SubjectError, log_size, read_log

__all__ = ["HOST_ADDRESS_ENV", "WorkerSubject"]

HOST_ADDRESS_ENV = "AGENTWORKER_HOST_ADDRESS"


class WorkerSubject:
    """Spawn mode (``command`` given): the worker is started with AGENTWORKER_HOST_ADDRESS
    in its environment, its output goes to a log file, an exit the case did not ask for is a
    crash attributed to the case, and the worker is restarted after it. Attach mode
    (``listen`` given): the harness listens there and waits for the user's worker."""

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        listen: str = "127.0.0.1:0",
        scale: float = 1.0,
        env: dict[str, str] | None = None,
        connect_timeout_s: float = 20.0,
        host: HarnessHost | None = None,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.command = command
        self._listen = listen
        self.scale = scale
        self.extra_env = dict(env or {})
        self.connect_timeout_s = connect_timeout_s
        self.host = host if host is not None else HarnessHost(scale=scale)
        self.host.liveness = self._gone
        self.credentials = credentials
        self._address = ""
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._stop_requested = False
        self.dirty = False
        self.start_problem = ""  # why the last restart failed (reported by the next case)
        self.expected_exit = False  # a case accepted the worker's exit (not a crash)
        self.starts = 0
        self.started_at_connection = 0
        self.started_at_call = 0

    # -- Subject protocol ------------------------------------------------------------------

    @property
    def spawned(self) -> bool:
        """Return whether the harness controls the worker's process."""
        return self.command is not None

    @property
    def address(self) -> str:
        """Return the harness host's address."""
        return self._address

    @property
    def description(self) -> str:
        """Describe the subject."""
        if self.command is not None:
            return "spawned: " + " ".join(self.command)
        return f"attached: worker connecting to {self._address or self._listen}"

    def replay_args(self) -> list[str]:
        """Return the arguments that select this subject again."""
        if self.command is not None:
            return ["--", *self.command]
        return ["--listen", self._listen]

    async def start(self) -> None:
        """Start the harness host (once) and the worker (spawn) or wait for it (attach)."""
        if self.host.server is None:
            try:
                self._address = await self.host.start(self._listen, self.credentials)
            except (OSError, RuntimeError) as exc:
                raise SubjectError(f"cannot listen on {self._listen}: {exc}") from exc
            if self.command is None:
                self._listen = self._address
        try:
            await self._start_worker()
        except SubjectError:
            await self.stop()
            raise

    async def _start_worker(self) -> None:
        self.start_problem = ""
        self.started_at_connection = len(self.host.connections)
        self.started_at_call = len(self.host.calls)
        self.dirty = False
        self.expected_exit = False
        if self.command is None:
            await self._wait_connected(
                f"no worker called the harness host at {self._address}", self.connect_timeout_s
            )
            return
        env = dict(os.environ)
        env.update(self.extra_env)
        env[HOST_ADDRESS_ENV] = self._address
        self._close_log()
        fd, name = tempfile.mkstemp(prefix="conformance-worker-", suffix=".log")
        self._log_path = Path(name)
        self._log = os.fdopen(fd, "wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise SubjectError(f"cannot start {self.command[0]!r}: {exc}") from exc
        self.starts += 1
        await self._wait_connected(
            "the worker made no call to the harness host", self.connect_timeout_s
        )

    async def _wait_connected(self, message: str, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within * self.scale
        while loop.time() < deadline:
            if len(self.host.calls) > self.started_at_call:
                return  # the worker reached the host; what it does next, the cases judge
            if self._process is not None and self._process.returncode is not None:
                raise SubjectError(
                    f"the worker exited with status {self._process.returncode} before "
                    f"connecting\n{self.output_tail()}".strip()
                )
            await asyncio.sleep(0.05)
        tail = self.output_tail()
        await self._stop_worker()
        raise SubjectError(f"{message} within {within * self.scale:.0f} s\n{tail}".strip())

    def request_stop(self) -> bool:
        """Send SIGTERM to the worker (spawn mode only)."""
        if self._process is None or self._process.returncode is not None:
            return False
        self._stop_requested = True
        self._process.send_signal(signal.SIGTERM)
        return True

    async def after_case(self, failed: bool) -> str | None:
        """Detect an exit the case did not ask for (a crash), and restart the worker when it
        exited or the case left it without a usable channel. A worker that cannot be
        restarted is not fatal: the next case reports why (``start_problem``) and tries
        again."""
        try:
            return await self._after_case(failed)
        except SubjectError as exc:
            self.start_problem = str(exc)
            return None

    async def restart_if_needed(self) -> None:
        """Start the worker again when a previous restart failed (spawn mode)."""
        if self.command is not None and (
            self._process is None or self._process.returncode is not None
        ):
            try:
                await self._stop_worker()
                await self._start_worker()
            except SubjectError as exc:
                self.start_problem = str(exc)

    async def _after_case(self, failed: bool) -> str | None:
        process = self._process
        if self.command is None:
            if self.dirty:
                self.dirty = False
                await self._wait_connected("the attached worker did not connect again", 10.0)
            return None
        if process is None:
            await self._start_worker()
            return None
        if self._stop_requested:
            self._stop_requested = False
            if process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 2.0 * self.scale)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await self._stop_worker()
            await self._start_worker()
            return None
        if failed and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.5 * self.scale)
        if process.returncode is not None and self.expected_exit:
            self.expected_exit = False
            await self._start_worker()
            return None
        if process.returncode is not None:
            message = (
                f"the worker exited with status {process.returncode} during this case; "
                f"its last output:\n{self.output_tail()}"
            ).strip()
            await self._start_worker()
            return message
        if self.dirty or failed:
            await self._stop_worker()
            await self._start_worker()
        return None

    async def stop(self) -> None:
        """Stop the worker (spawn) and the harness host."""
        await self._stop_worker()
        self._close_log()
        await self.host.stop()

    def _gone(self) -> str | None:
        process = self._process
        if process is None or process.returncode is None or self._stop_requested:
            return None
        return f"the worker exited with status {process.returncode}"

    # -- for cases -------------------------------------------------------------------------

    def current_connection(self) -> Connection | None:
        """Return the newest open data channel since the worker (re)started."""
        for conn in reversed(self.host.connections[self.started_at_connection :]):
            if not conn.control and not conn.ended.is_set():
                return conn
        return None

    @property
    def returncode(self) -> int | None:
        """Return the worker's exit status, None while it runs (or in attach mode)."""
        return None if self._process is None else self._process.returncode

    async def wait_exit(self, within: float) -> int | None:
        """Wait up to ``within`` seconds (scaled) for the worker to exit; return its status."""
        if self._process is None:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), within * self.scale)
        return self._process.returncode

    def log_size(self) -> int:
        """Return how many bytes the worker has written so far."""
        if self._log_path is None or not self._log_path.exists():
            return 0
        return self._log_path.stat().st_size

    def output_size(self) -> int:
        """Return how many bytes the worker has written."""
        return log_size(self._log_path)

    def output_since(self, offset: int) -> str:
        """Return what the worker wrote after ``offset`` bytes."""
        return read_log(self._log_path, offset)

    def output_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines the worker wrote."""
        return "\n".join(self.output_since(0).splitlines()[-lines:])

    async def _stop_worker(self) -> None:
        process, self._process = self._process, None
        self._stop_requested = False
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 3.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # Close the channels the old process left open from the host side.
        for conn in self.host.connections:
            if not conn.ended.is_set():
                conn.close()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None
