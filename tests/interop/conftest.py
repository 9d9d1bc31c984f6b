"""Fixtures for the AutoGen interop tests.

The AutoGen virtualenv (interop/autogen/.venv) is created once per session by
interop/autogen/setup.sh, which returns at once when it is up to date. These tests are part of
the normal run: a failed setup fails them, it never skips them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from reference_host import Host, HostConfig
from reference_worker import Worker
from tests.interop._autogen import AUTOGEN_PYTHON, SETUP_SCRIPT, AutoGenProcess, event_is

SETUP_DEADLINE_S = 600.0
START_DEADLINE_S = 30.0

StartAutoGen = Callable[..., Awaitable[AutoGenProcess]]
WorkerFactory = Callable[..., Awaitable[Worker]]


@pytest.fixture(scope="session")
def autogen_venv() -> str:
    """Builds (or checks) the AutoGen virtualenv; returns its interpreter's path."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=SETUP_DEADLINE_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"interop/autogen/setup.sh took longer than {SETUP_DEADLINE_S:g} s: {exc}")
    if done.returncode != 0:
        pytest.fail(
            f"interop/autogen/setup.sh failed ({done.returncode}) after "
            f"{time.monotonic() - started:.0f} s:\n{done.stdout}\n{done.stderr}"
        )
    return str(AUTOGEN_PYTHON)


@pytest_asyncio.fixture
async def host(request: pytest.FixtureRequest) -> AsyncIterator[Host]:
    """Our reference host on a free loopback port. Its default RPC deadline is short, so that a
    call nobody answers ends within the test's own deadlines. Indirect parametrization
    (`@pytest.mark.parametrize("host", [{...}], indirect=True)`) overrides HostConfig fields."""
    settings: dict[str, Any] = {"metrics_log_interval_s": 0, "default_rpc_timeout_ms": 15_000}
    settings.update(getattr(request, "param", {}))
    server = Host(address="127.0.0.1:0", config=HostConfig(**settings))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


def address_of(server: Host) -> str:
    return f"127.0.0.1:{server.port}"


@pytest_asyncio.fixture
async def autogen(autogen_venv: str, host: Host) -> AsyncIterator[StartAutoGen]:
    """Starts AutoGen-side scripts against `host` and waits for their "ready" line; every
    process still running at the end is stopped."""
    processes: list[AutoGenProcess] = []

    async def start(script: str, *args: str, name: str | None = None) -> AutoGenProcess:
        process = await AutoGenProcess.start(script, "--host", address_of(host), *args, name=name)
        processes.append(process)
        await process.wait_for(event_is("ready"), within=START_DEADLINE_S)
        return process

    try:
        yield start
    finally:
        for process in processes:
            await process.close()


@pytest_asyncio.fixture
async def make_worker(host: Host) -> AsyncIterator[WorkerFactory]:
    """Starts reference_worker Workers on `host`; stops them at the end."""
    workers: list[Worker] = []

    async def factory(**kwargs: object) -> Worker:
        worker = Worker(address_of(host), **kwargs)  # type: ignore[arg-type]
        workers.append(worker)
        await worker.start()
        return worker

    try:
        yield factory
    finally:
        for worker in workers:
            await worker.stop(grace=1.0)
