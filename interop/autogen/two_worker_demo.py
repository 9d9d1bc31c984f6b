"""AutoGen's documented distributed-runtime demo, run against any agentworker host.

This is the two-worker example of AutoGen's "Distributed Agent Runtime" guide: each worker
runtime hosts one `@default_subscription` agent; every agent publishes a greeting on the default
topic for each message it receives and stops after publishing `--count` (5 in the guide). One
worker publishes "Hello!" to start. The guide waits 5 seconds; this script instead waits until
every agent has published `--count` messages and received all the others' (or `--timeout`
passes), then `--settle` seconds more to see that nobody publishes again, and prints a JSON
summary line:

    {"event": "done", "ok": true, "published": {"worker1": 5, "worker2": 5},
     "received": {"worker1": 6, "worker2": 6}, "seconds": 0.4}

Usage (with interop/autogen/.venv/bin/python):

    two_worker_demo.py --host 127.0.0.1:50051 [--count 5] [--names worker1,worker2]

Exit status 0 when every agent published exactly `--count` messages, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
from dataclasses import dataclass

from autogen_core import (
    DefaultTopicId,
    MessageContext,
    RoutedAgent,
    default_subscription,
    message_handler,
)
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime
from interop_common import emit


@dataclass
class MyMessage:
    content: str


@default_subscription
class MyAgent(RoutedAgent):
    """The guide's agent, counting what it receives and publishes for the summary."""

    limit = 5
    published: dict[str, int] = {}  # noqa: RUF012 - shared counters of this demo process
    received: dict[str, int] = {}  # noqa: RUF012
    changed: asyncio.Event | None = None

    def __init__(self, name: str) -> None:
        super().__init__("My agent")
        self._name = name
        self._counter = 0

    @message_handler
    async def my_message_handler(self, message: MyMessage, ctx: MessageContext) -> None:
        MyAgent.received[self._name] = MyAgent.received.get(self._name, 0) + 1
        self._counter += 1
        if self._counter > MyAgent.limit:
            if MyAgent.changed is not None:
                MyAgent.changed.set()
            return
        content = f"{self._name}: Hello x {self._counter}"
        print(content, flush=True)
        await self.publish_message(MyMessage(content=content), DefaultTopicId())
        MyAgent.published[self._name] = MyAgent.published.get(self._name, 0) + 1
        if MyAgent.changed is not None:
            MyAgent.changed.set()


def _factory(name: str) -> MyAgent:
    return MyAgent(name)


async def main(args: argparse.Namespace) -> int:
    names = [n for n in args.names.split(",") if n]
    MyAgent.limit = args.count
    MyAgent.changed = asyncio.Event()
    workers: list[GrpcWorkerAgentRuntime] = []
    started = time.monotonic()
    try:
        for name in names:
            worker = GrpcWorkerAgentRuntime(host_address=args.host)
            await worker.start()
            workers.append(worker)
            await MyAgent.register(worker, name, functools.partial(_factory, name))
        emit("ready", names=names)

        await workers[-1].publish_message(MyMessage(content="Hello!"), DefaultTopicId())

        # Each agent gets "Hello!" and every other agent's greetings.
        expected_received = 1 + (len(names) - 1) * args.count

        def finished() -> bool:
            return all(
                MyAgent.published.get(n, 0) >= args.count
                and MyAgent.received.get(n, 0) >= expected_received
                for n in names
            )

        deadline = started + args.timeout
        while not finished() and time.monotonic() < deadline:
            MyAgent.changed.clear()
            try:
                await asyncio.wait_for(MyAgent.changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        await asyncio.sleep(args.settle)  # anything more would show up now
    finally:
        for worker in workers:
            await worker.stop()
    published = {n: MyAgent.published.get(n, 0) for n in names}
    ok = all(count == args.count for count in published.values())
    emit(
        "done",
        ok=ok,
        published=published,
        received={n: MyAgent.received.get(n, 0) for n in names},
        seconds=round(time.monotonic() - started, 3),
    )
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost:50051", help="host address HOST:PORT")
    parser.add_argument("--count", type=int, default=5, help="messages each agent publishes")
    parser.add_argument(
        "--names", default="worker1,worker2", help="comma-separated agent types, one per worker"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait in all")
    parser.add_argument(
        "--settle", type=float, default=0.5, help="seconds to watch after the last publish"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
