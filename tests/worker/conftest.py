"""Fixtures for the reference worker's tests: a loopback reference host and workers on it."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio

from reference_host import Host, HostConfig
from reference_worker import Worker

ROOT = pathlib.Path(__file__).resolve().parents[2]

WorkerFactory = Callable[..., Awaitable[Worker]]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that imports our packages from the tree."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "gen" / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


PYTHON = sys.executable


class Inbox:
    """Collects items and lets a test wait, with a deadline, until enough have arrived."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Condition()

    def add(self, item: Any) -> None:
        self.items.append(item)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int, within: float = 15.0) -> list[Any]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.items) >= count)
        return list(self.items)


async def eventually(predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Waits until ``predicate()`` holds (a state with no event to await), or fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def host() -> AsyncIterator[Host]:
    server = Host(address="127.0.0.1:0", config=HostConfig(metrics_log_interval_s=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


def address_of(server: Host) -> str:
    return f"127.0.0.1:{server.port}"


@pytest_asyncio.fixture
async def make_worker(host: Host) -> AsyncIterator[WorkerFactory]:
    workers: list[Worker] = []

    async def factory(**kwargs: Any) -> Worker:
        worker = Worker(address_of(host), **kwargs)
        workers.append(worker)
        await worker.start()
        return worker

    try:
        yield factory
    finally:
        for worker in workers:
            await worker.stop(grace=1.0)
