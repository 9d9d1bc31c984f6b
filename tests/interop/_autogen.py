"""Runs the AutoGen-side scripts of interop/autogen as subprocesses and reads their JSON lines.

The scripts run under interop/autogen/.venv/bin/python, with no PYTHONPATH, so they reach our
code only over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
AUTOGEN_DIR = ROOT / "interop" / "autogen"
AUTOGEN_PYTHON = AUTOGEN_DIR / ".venv" / "bin" / "python"
SETUP_SCRIPT = AUTOGEN_DIR / "setup.sh"

Line = dict[str, Any]
Predicate = Callable[[Line], bool]


def autogen_env() -> dict[str, str]:
    """The environment of an AutoGen process: ours, without anything that would let it import
    the project's packages or our virtualenv's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def event_is(name: str, **fields: Any) -> Predicate:
    """A predicate matching lines with event `name` whose members equal `fields`."""

    def match(line: Line) -> bool:
        return line.get("event") == name and all(line.get(k) == v for k, v in fields.items())

    return match


class AutoGenProcess:
    """One running AutoGen-side script: its stdout JSON lines, stdin commands and exit."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[Line] = []
        self.stderr = bytearray()
        self._changed = asyncio.Condition()
        self._readers = [
            asyncio.get_running_loop().create_task(self._read_stdout()),
            asyncio.get_running_loop().create_task(self._read_stderr()),
        ]
        self._next_call = 0

    @classmethod
    async def start(cls, script: str, *args: str, name: str | None = None) -> AutoGenProcess:
        """Runs an AutoGen-side script of interop/autogen in the AutoGen virtualenv."""
        return await cls.spawn(
            [str(AUTOGEN_PYTHON), str(AUTOGEN_DIR / script), *args],
            name=name or script,
            cwd=AUTOGEN_DIR,
            env=autogen_env(),
        )

    @classmethod
    async def spawn(
        cls, argv: list[str], *, name: str, cwd: pathlib.Path, env: dict[str, str]
    ) -> AutoGenProcess:
        """Runs any program; lines of its stdout that are not JSON objects are recorded as
        {"event": "text", "text": line}."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(cwd),
            env=env,
        )
        return cls(name, process)

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            if not isinstance(line, dict):
                line = {"event": "text", "text": text}
            async with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self.stderr += chunk
            del self.stderr[: max(0, len(self.stderr) - 200_000)]

    # -- reading ------------------------------------------------------------------------------

    def matching(self, predicate: Predicate) -> list[Line]:
        return [line for line in self.lines if predicate(line)]

    def diagnostics(self) -> str:
        tail = "\n".join(json.dumps(line) for line in self.lines[-30:])
        err = self.stderr.decode(errors="replace")[-4000:]
        return (
            f"--- {self.name} (exit {self.process.returncode}) stdout, last lines:\n{tail}\n"
            f"--- {self.name} stderr, tail:\n{err}"
        )

    async def wait_for_count(self, predicate: Predicate, count: int, within: float) -> list[Line]:
        """Waits until `count` lines match (for at most `within` seconds); returns them."""
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(
                    lambda: len(self.matching(predicate)) >= count or self._stdout_done()
                )
        except TimeoutError:
            pass
        found = self.matching(predicate)
        if len(found) < count:
            raise AssertionError(
                f"{self.name}: {len(found)} of {count} expected lines within {within} s\n"
                + self.diagnostics()
            )
        return found

    async def wait_for(self, predicate: Predicate, within: float = 20.0) -> Line:
        return (await self.wait_for_count(predicate, 1, within))[0]

    def _stdout_done(self) -> bool:
        return self._readers[0].done()

    # -- commands (caller.py) -----------------------------------------------------------------

    async def send(self, command: Line) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()

    async def start_call(
        self,
        target: tuple[str, str],
        type_name: str,
        body: Line,
        *,
        timeout: float = 20.0,  # noqa: ASYNC109 - the caller's own limit, passed along
    ) -> str:
        """Asks caller.py to make a call; returns the command id to wait for."""
        self._next_call += 1
        call_id = f"{self.name}-{self._next_call}"
        await self.send(
            {
                "op": "call",
                "id": call_id,
                "target": list(target),
                "type": type_name,
                "body": body,
                "timeout": timeout,
            }
        )
        return call_id

    async def result(self, call_id: str, within: float = 30.0) -> Line:
        return await self.wait_for(event_is("result", id=call_id), within)

    async def call(
        self,
        target: tuple[str, str],
        type_name: str,
        body: Line,
        *,
        timeout: float = 20.0,  # noqa: ASYNC109 - the caller's own limit, passed along
    ) -> Line:
        """Makes one call through caller.py and returns its result line."""
        call_id = await self.start_call(target, type_name, body, timeout=timeout)
        return await self.result(call_id, within=timeout + 10.0)

    # -- ending -------------------------------------------------------------------------------

    async def wait_exit(self, within: float) -> int:
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} did not exit within {within} s\n" + self.diagnostics()
            ) from None
        return code

    async def terminate(self, within: float = 15.0) -> int:
        """SIGTERM, then waits for a clean exit."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit(within)

    async def kill(self) -> int:
        """SIGKILL: the worker vanishes without closing anything."""
        if self.process.returncode is None:
            self.process.kill()
        return await self.wait_exit(10.0)

    async def close(self) -> None:
        """Ends the process whatever its state: stdin closed, SIGTERM, then SIGKILL."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10.0):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        try:
            async with asyncio.timeout(5.0):
                await asyncio.gather(*self._readers, return_exceptions=True)
        except TimeoutError:
            for reader in self._readers:
                reader.cancel()
            await asyncio.gather(*self._readers, return_exceptions=True)
