"""Runs the whole group chat: a host and three worker processes (writer, editor, UI).

Run it from the repository root::

    python examples/group_chat/run.py                 # starts its own host on loopback
    python examples/group_chat/run.py --host-address localhost:50051

It starts the writer and editor, waits until both are registered, starts the UI (which posts
the task and prints the conversation), and exits 0 once the UI printed the whole conversation;
it exits 1 if that takes longer than --timeout seconds. The writer and editor are then stopped
with SIGTERM, which they answer by draining and exiting 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
import sys

from common import DEFAULT_ROUNDS, SOURCE_PATHS

HERE = pathlib.Path(__file__).resolve().parent


async def _spawn(script: str, *args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*SOURCE_PATHS, env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / script), *args, stdout=asyncio.subprocess.PIPE, env=env
    )


async def _wait_ready(name: str, process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"{name} did not start: {line!r}")


async def orchestrate(host_address: str | None, rounds: int, deadline: float) -> int:
    host = None
    if host_address is None:
        from reference_host import Host, HostConfig

        host = Host(address="127.0.0.1:0", config=HostConfig(metrics_log_interval_s=0))
        await host.start()
        host_address = f"127.0.0.1:{host.port}"
    participants: list[asyncio.subprocess.Process] = []
    ui: asyncio.subprocess.Process | None = None
    try:
        async with asyncio.timeout(deadline):
            for role in ("writer", "editor"):
                process = await _spawn(
                    "agent.py", "--host-address", host_address, "--role", role,
                    "--rounds", str(rounds),
                )  # fmt: skip
                participants.append(process)
                await _wait_ready(role, process)
            ui = await _spawn("ui.py", "--host-address", host_address, "--timeout", str(deadline))
            assert ui.stdout is not None
            transcript: list[str] = []
            while raw := await ui.stdout.readline():
                line = raw.decode().rstrip()
                transcript.append(line)
                print(line, flush=True)
            code = await ui.wait()
            for process in participants:
                process.send_signal(signal.SIGTERM)
            codes = [await process.wait() for process in participants]
    except (TimeoutError, RuntimeError) as exc:
        print(f"group chat failed: {exc or 'timed out'}", file=sys.stderr)
        return 1
    finally:
        for process in [*participants, *([ui] if ui else [])]:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if host is not None:
            await host.stop(grace=1.0)
    complete = bool(transcript) and transcript[-1] == "conversation complete"
    turns = sum(1 for line in transcript if line.startswith("["))
    if code != 0 or any(codes) or not complete or turns != 2 * rounds + 1:
        print(f"unexpected result: ui={code}, agents={codes}, turns={turns}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="run the distributed group chat")
    parser.add_argument("--host-address", help="HOST:PORT of a running host")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="writer drafts")
    parser.add_argument("--timeout", type=float, default=30.0, help="overall deadline (s)")
    args = parser.parse_args()
    return asyncio.run(orchestrate(args.host_address, args.rounds, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
