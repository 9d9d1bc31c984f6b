"""Two workers in two processes greet each other through a shared topic.

This is the distributed runtime demo: each worker hosts one agent subscribed to the "default"
topic; every message an agent receives makes it publish a greeting, until it has published 5.

Run it from the repository root::

    python examples/greeting_demo.py                      # starts its own host on loopback
    python examples/greeting_demo.py --host-address localhost:50051   # uses a running host

It prints the conversation (10 lines, "worker1: Hello x 1" ...) and exits 0 when both agents
published exactly 5 messages, or 1 if that did not happen within --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import re
import signal
import sys
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_PATHS = [str(ROOT), str(ROOT / "gen" / "python")]
sys.path[:0] = [path for path in SOURCE_PATHS if path not in sys.path]

from reference_worker import (  # noqa: E402 - after the source-checkout path setup
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    default_subscription,
    message_handler,
)
from reference_worker import Worker as GrpcWorkerAgentRuntime  # noqa: E402

ROLES = ("worker1", "worker2")
LIMIT = 5
LINE = re.compile(r"^(worker[12]): Hello x (\d+)$")

# -- the seed's code, unchanged from here ...


@dataclass
class MyMessage:
    content: str


@default_subscription
class MyAgent(RoutedAgent):
    def __init__(self, name: str) -> None:
        super().__init__("My agent")
        self._name = name
        self._counter = 0

    @message_handler
    async def my_message_handler(self, message: MyMessage, ctx: MessageContext) -> None:
        self._counter += 1
        if self._counter > 5:
            return
        content = f"{self._name}: Hello x {self._counter}"
        print(content)
        await self.publish_message(MyMessage(content=content), DefaultTopicId())


# -- ... to here.


async def run_worker(role: str, host_address: str) -> int:
    """One worker process, as in the seed: hosts one agent until SIGTERM, then drains."""
    worker = GrpcWorkerAgentRuntime(host_address=host_address)
    await worker.start()
    await MyAgent.register(worker, role, lambda: MyAgent(role))
    print("ready", flush=True)
    await worker.stop_when_signal()
    return 0


def _complete(lines: list[str]) -> bool:
    return all(sum(line.startswith(f"{role}:") for line in lines) >= LIMIT for role in ROLES)


async def _relay(
    role: str,
    stream: asyncio.StreamReader,
    ready: asyncio.Event,
    lines: list[str],
    finished: asyncio.Event,
) -> None:
    while raw := await stream.readline():
        line = raw.decode().strip()
        if line == "ready":
            ready.set()
        elif LINE.match(line):
            lines.append(line)
            print(line, flush=True)
            if _complete(lines):
                finished.set()
        else:
            print(f"[{role}] {line}", file=sys.stderr)


async def orchestrate(host_address: str | None, deadline: float) -> int:
    host = None
    if host_address is None:
        from reference_host import Host, HostConfig

        host = Host(address="127.0.0.1:0", config=HostConfig(metrics_log_interval_s=0))
        await host.start()
        host_address = f"127.0.0.1:{host.port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*SOURCE_PATHS, env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # the seed's print() reaches us line by line
    lines: list[str] = []
    finished = asyncio.Event()
    processes: list[asyncio.subprocess.Process] = []
    relays: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(deadline):
            for role in ROLES:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--role",
                    role,
                    "--host-address",
                    host_address,
                    stdout=asyncio.subprocess.PIPE,
                    env=env,
                )
                assert process.stdout is not None
                ready = asyncio.Event()
                relays.append(
                    asyncio.create_task(_relay(role, process.stdout, ready, lines, finished))
                )
                processes.append(process)
                await ready.wait()
            # Both agents are registered: start the conversation, as the seed demo does.
            starter = GrpcWorkerAgentRuntime(host_address=host_address)
            await starter.start()
            await starter.publish_message(MyMessage(content="Hello!"), DefaultTopicId())
            await starter.stop(grace=1.0)
            await finished.wait()  # each agent published its 5 messages
            for process in processes:
                process.send_signal(signal.SIGTERM)  # the workers drain and exit 0
            codes = [await process.wait() for process in processes]
            await asyncio.gather(*relays)
    except TimeoutError:
        print(f"timed out after {deadline:g} s", file=sys.stderr)
        return 1
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if host is not None:
            await host.stop(grace=1.0)
    counts = {role: sum(1 for line in lines if line.startswith(f"{role}:")) for role in ROLES}
    if any(codes) or any(count != LIMIT for count in counts.values()):
        print(f"unexpected result: exit codes {codes}, messages {counts}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host-address", help="HOST:PORT of a running host")
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=30.0, help="overall deadline (s)")
    args = parser.parse_args()
    if args.role:
        return asyncio.run(run_worker(args.role, args.host_address))
    return asyncio.run(orchestrate(args.host_address, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
