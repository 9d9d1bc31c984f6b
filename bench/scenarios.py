"""One measurement: connect the load clients to a host, warm up, measure a window, drain, check.

Each measurement uses fresh worker connections with their own client ids, agent types and topic,
so measurements never see each other's traffic. The window's figures come from what the
clients received while the window was open and from the host's CPU time over the same window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from .clients import Phase, PublishLoad, RpcLoad, Worker
from .subjects import (
    CpuSample,
    HostProcess,
    Subject,
    cpu_between,
    cpu_sample,
    machine_busy_seconds,
)

KIND_RPC: Final = "rpc"
KIND_PUBLISH: Final = "publish"
PROBE_ATTEMPTS: Final = 40
PROBE_WAIT_S: Final = 0.25


@dataclass(frozen=True)
class Scenario:
    """What a measurement does: RPCs at a concurrency, or publishing to N subscribers."""

    name: str
    kind: str
    level: int
    label: str


SCENARIOS: Final = (
    Scenario("rpc_c1", KIND_RPC, 1, "RPC/s, 1 in flight"),
    Scenario("rpc_c16", KIND_RPC, 16, "RPC/s, 16 in flight"),
    Scenario("rpc_c64", KIND_RPC, 64, "RPC/s, 64 in flight"),
    Scenario("pub_s1", KIND_PUBLISH, 1, "deliveries/s, 1 subscriber"),
    Scenario("pub_s4", KIND_PUBLISH, 4, "deliveries/s, 4 subscribers"),
)
SCENARIO_BY_NAME: Final = {scenario.name: scenario for scenario in SCENARIOS}


@dataclass(frozen=True)
class Timing:
    """Durations and sizes of one measurement."""

    warmup_s: float
    duration_s: float
    drain_s: float = 5.0
    payload_bytes: int = 64
    # Events published and not yet received by every subscriber, at most.
    publish_window: int = 256
    # Upper bounds on what one measurement sends (never reached at realistic rates).
    max_requests: int = 5_000_000
    max_events: int = 5_000_000


class MeasurementError(Exception):
    """A measurement could not run (the host did not route the probe, a channel ended...)."""


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 4)


async def _open_all(workers: list[Worker]) -> None:
    await asyncio.gather(*(worker.open() for worker in workers))


async def _close_all(workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        await worker.close()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 2.0)


class _Window:
    """Wall time and CPU time (host and this process) of the measuring window."""

    def __init__(self, host: HostProcess) -> None:
        self._host = host
        self._self_pid = os.getpid()
        self.start = 0.0
        self.end = 0.0
        self._host_before: CpuSample | None = None
        self._self_before: CpuSample | None = None
        self._machine_before = 0.0
        self.host_cpu_s = 0.0
        self.client_cpu_s = 0.0
        self.machine_cpu_s = 0.0
        self.max_gap_s = 0.0

    def open(self, phase: Phase) -> None:
        self._host_before = self._host.cpu()
        self._self_before = cpu_sample(self._self_pid)
        self._machine_before = machine_busy_seconds()
        self.start = time.perf_counter()
        phase.last_progress = self.start
        phase.measuring = True

    def close(self, phase: Phase) -> None:
        phase.measuring = False
        self.end = time.perf_counter()
        phase.progress(self.end)
        assert self._host_before is not None
        assert self._self_before is not None
        self.host_cpu_s = cpu_between(self._host_before, self._host.cpu())
        self.client_cpu_s = cpu_between(self._self_before, cpu_sample(self._self_pid))
        self.machine_cpu_s = machine_busy_seconds() - self._machine_before
        self.max_gap_s = phase.max_gap_s

    @property
    def seconds(self) -> float:
        return self.end - self.start


async def _timed_phases(
    phase: Phase, window: _Window, timing: Timing, running: Callable[[], bool]
) -> None:
    await _sleep_while(timing.warmup_s, running)
    window.open(phase)
    await _sleep_while(timing.duration_s, running)
    window.close(phase)
    phase.stopping = True


async def _sleep_while(seconds: float, running: Callable[[], bool]) -> None:
    """Sleep ``seconds`` in short steps, returning early if ``running()`` turns False."""
    deadline = time.perf_counter() + seconds
    for _ in range(100_000):
        remaining = deadline - time.perf_counter()
        if remaining <= 0 or not running():
            return
        await asyncio.sleep(min(0.05, remaining))


def _task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coro)


def _check_task(task: asyncio.Task[None], what: str) -> None:
    if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
        raise MeasurementError(f"{what} failed: {exc!r}") from exc


async def measure_rpc(
    host: HostProcess, subject: Subject, concurrency: int, timing: Timing, tag: str
) -> dict[str, Any]:
    """Run the RPC load at ``concurrency`` in flight against ``host``."""
    caller = Worker(host.address, f"bench-{tag}-caller", subject.mode)
    responder = Worker(host.address, f"bench-{tag}-responder", subject.mode)
    workers = [caller, responder]
    tasks: list[asyncio.Task[None]] = []
    phase = Phase()
    window = _Window(host)
    target_type = f"bench_responder_{tag}"
    try:
        await _open_all(workers)
        await responder.register(target_type)
        load = RpcLoad(
            caller,
            responder,
            target_type,
            concurrency,
            timing.payload_bytes,
            phase,
            timing.max_requests,
        )
        responder_task = _task(load.run_responder())
        tasks.append(responder_task)
        if not await load.probe(PROBE_ATTEMPTS, PROBE_WAIT_S):
            raise MeasurementError(f"{subject.name}: no probe request was answered")
        load.answered = 0
        caller_task = _task(load.run_caller())
        tasks.append(caller_task)
        await _timed_phases(phase, window, timing, lambda: not caller_task.done())
        _check_task(caller_task, "the caller")
        _check_task(responder_task, "the responder")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(caller_task), timing.drain_s)
        _check_task(caller_task, "the caller")
        drained = caller_task.done()
        count = load.window_count
        seconds = window.seconds
        latencies = load.latencies
        complete = (
            drained
            and load.received == load.sent
            and load.answered == load.sent
            and load.errors == 0
            and load.stray == 0
        )
        return {
            "rate": count / seconds if seconds > 0 else 0.0,
            "unit": "RPC/s",
            "window_s": round(seconds, 4),
            "window_ops": count,
            "messages": 2 * count,
            "p50_ms": _ms(_percentile(latencies, 0.50)),
            "p99_ms": _ms(_percentile(latencies, 0.99)),
            "mean_ms": _ms(statistics.fmean(latencies)) if latencies else None,
            **_cpu_fields(window, 2 * count),
            "sent": load.sent,
            "received": load.received,
            "answered": load.answered,
            "errors": load.errors,
            "stray": load.stray,
            "batching": caller.batching and responder.batching,
            "batches_sent": caller.batches_sent + responder.batches_sent,
            "batches_received": caller.batches_received + responder.batches_received,
            "complete": complete,
        }
    finally:
        await _close_all(workers, tasks)


async def measure_publish(
    host: HostProcess, subject: Subject, subscribers: int, timing: Timing, tag: str
) -> dict[str, Any]:
    """Publish to ``subscribers`` subscriber workers through ``host``."""
    publisher = Worker(host.address, f"bench-{tag}-publisher", subject.mode)
    subs = [
        Worker(host.address, f"bench-{tag}-subscriber{index}", subject.mode)
        for index in range(subscribers)
    ]
    workers = [publisher, *subs]
    tasks: list[asyncio.Task[None]] = []
    phase = Phase()
    window = _Window(host)
    topic = f"bench.topic.{tag}"
    try:
        await _open_all(workers)

        async def _subscribe(index: int, worker: Worker) -> None:
            agent_type = f"bench_subscriber_{tag}_{index}"
            await worker.register(agent_type)
            await worker.subscribe(f"bench-{tag}-sub{index}", topic, agent_type)

        await asyncio.gather(*(_subscribe(i, worker) for i, worker in enumerate(subs)))
        load = PublishLoad(
            publisher,
            subs,
            topic,
            timing.payload_bytes,
            timing.publish_window,
            phase,
            timing.max_events,
        )
        for index in range(subscribers):
            tasks.append(_task(load.run_subscriber(index)))
        if not await load.probe(PROBE_ATTEMPTS, PROBE_WAIT_S):
            raise MeasurementError(f"{subject.name}: a probe event reached no subscriber")
        load.reset()
        publisher_task = _task(load.run_publisher())
        tasks.append(publisher_task)
        await _timed_phases(phase, window, timing, lambda: not publisher_task.done())
        for task in tasks:
            _check_task(task, "a publish worker")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(publisher_task), timing.drain_s)
        _check_task(publisher_task, "the publisher")
        delivered_all = await load.wait_delivered(timing.drain_s)
        count = load.window_count
        seconds = window.seconds
        per_subscriber_ok = all(n == load.published for n in load.per_subscriber)
        return {
            "rate": count / seconds if seconds > 0 else 0.0,
            "unit": "deliveries/s",
            "window_s": round(seconds, 4),
            "window_ops": count,
            "messages": count,
            "events_per_s": count / seconds / subscribers if seconds > 0 else 0.0,
            **_cpu_fields(window, count),
            "published": load.published,
            "delivered": load.delivered,
            "per_subscriber": list(load.per_subscriber),
            "other_frames": load.other_frames,
            "batching": publisher.batching and all(worker.batching for worker in subs),
            "batches_sent": publisher.batches_sent,
            "batches_received": sum(worker.batches_received for worker in subs),
            "complete": delivered_all and per_subscriber_ok and load.other_frames == 0,
        }
    finally:
        await _close_all(workers, tasks)


def _cpu_fields(window: _Window, messages: int) -> dict[str, Any]:
    seconds = window.seconds
    return {
        "host_cpu_s": round(window.host_cpu_s, 6),
        "host_cpu_us_per_msg": (window.host_cpu_s * 1e6 / messages) if messages else None,
        "host_util": round(window.host_cpu_s / seconds, 4) if seconds > 0 else None,
        "client_cpu_s": round(window.client_cpu_s, 6),
        "client_util": round(window.client_cpu_s / seconds, 4) if seconds > 0 else None,
        # Cores busy with anything else (other processes) during the window: noise indicator.
        "other_util": round(
            max(0.0, window.machine_cpu_s - window.host_cpu_s - window.client_cpu_s) / seconds, 4
        )
        if seconds > 0
        else None,
        "max_gap_ms": round(window.max_gap_s * 1000.0, 3),
    }


Measure = Callable[[HostProcess, Subject, int, Timing, str], Awaitable[dict[str, Any]]]


async def measure(
    host: HostProcess, subject: Subject, scenario: Scenario, timing: Timing, tag: str
) -> dict[str, Any]:
    """Run ``scenario`` once against ``host``; bounded by the timing plus setup allowances."""
    run: Measure = measure_rpc if scenario.kind == KIND_RPC else measure_publish
    budget = timing.warmup_s + timing.duration_s + 2 * timing.drain_s + 30.0
    try:
        result = await asyncio.wait_for(run(host, subject, scenario.level, timing, tag), budget)
    except TimeoutError as exc:
        raise MeasurementError(f"{subject.name} {scenario.name}: over {budget:.0f} s") from exc
    if not host.alive():
        raise MeasurementError(f"{subject.name} exited during {scenario.name}")
    return result
