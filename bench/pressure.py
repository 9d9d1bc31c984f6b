"""The reference host under pressure: scenarios that once took a host down, and their figures.

Each scenario drives a reference host subprocess (``PressureHost``) with raw clients while a
probe process (``bench.probe``) calls an echo agent through the same host, and returns what it
saw: how every call ended, the host's peak resident memory, the probe's latencies. The stress
tests (tests/stress) assert on these results; ``python -m bench.pressure`` reports them in
bench/results/pressure.md, with the memory per connection and per call in flight and the time
to answer N calls pending at a target that leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import HostConfig
from reference_host._memory import K0_BYTES, KC_BYTES, KF_BYTES, KN_BYTES, memory_bound

from .clients import MODE_BATCHED, Worker
from .subjects import KIND_OURS, REPO, HostProcess, Subject, free_port, make_log_dir

RESULTS: Final = REPO / "bench" / "results"
_PAYLOAD: Final = pb.Payload(data_type="Ping", data_content_type="application/json", data=b"1")
_SUBJECT: Final = Subject("pressure", KIND_OURS, MODE_BATCHED, "reference_host under pressure")
# Every wait of a scenario ends by this deadline (generous: the machine may be loaded).
WAIT_S: Final = 120.0
PROBE_START_S: Final = 30.0


def _kib(value: int) -> int:
    return value // 1024


class PressureHost(HostProcess):
    """A reference host subprocess with chosen limits and a metrics endpoint."""

    def __init__(self, log_dir: Path, config: HostConfig) -> None:
        super().__init__(_SUBJECT, log_dir)
        self.config = config
        self.metrics_port = 0

    def command(self) -> list[str]:
        """Return the CLI command with this host's limits."""
        config = self.config
        self.metrics_port = free_port()
        return [
            *super().command(),
            "--queue-limit",
            str(config.queue_limit),
            "--max-calls-in-flight",
            str(config.max_calls_in_flight),
            "--slow-consumer-timeout-ms",
            str(config.slow_consumer_timeout_ms),
            "--default-rpc-timeout-ms",
            str(config.default_rpc_timeout_ms),
            "--metrics-address",
            f"127.0.0.1:{self.metrics_port}",
            "--log-level",
            "WARNING",
        ]

    def _status(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field_name} in /proc/{self.pid}/status")

    def rss(self) -> int:
        """Return the host's resident memory now, in bytes."""
        return self._status("VmRSS")

    def peak_rss(self) -> int:
        """Return the host's peak resident memory so far, in bytes."""
        return self._status("VmHWM")

    async def metrics(self) -> dict[str, float]:
        """Scrape the host's metrics endpoint; return samples as ``name{label}`` -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"

        def fetch() -> str:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return str(reply.read().decode())

        text = await asyncio.to_thread(fetch)
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples


class Probe:
    """The liveness probe process (bench.probe) against one host."""

    def __init__(self, address: str, interval_ms: int = 50) -> None:
        self._address = address
        self._interval_ms = interval_ms
        self._process: subprocess.Popen[str] | None = None

    async def start(self) -> None:
        """Start the probe and wait until it is registered and calling."""
        # Popen returns at once; the wait for the probe's "ready" line runs in a thread.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "bench.probe", self._address, str(self._interval_ms)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self._process.stdout
        assert stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), PROBE_START_S)
        if line.strip() != "ready":
            raise RuntimeError(f"the probe did not start: {line!r}")

    async def stop(self) -> dict[str, Any]:
        """Stop probing; return the probe's summary."""
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT_S)
        await asyncio.wait_for(asyncio.to_thread(process.wait), WAIT_S)
        process.stdout.close()
        summary: dict[str, Any] = json.loads(line)
        return summary

    def kill(self) -> None:
        """Kill the probe if it still runs, and close its pipes."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


@dataclass
class Outcome:
    """What a scenario observed."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    # Every call's ending code, by ErrorCode name (or "OK").
    codes: dict[str, int] = field(default_factory=dict)
    # Calls with no answer, or with more than one.
    unanswered: int = 0
    duplicates: int = 0
    probe: dict[str, Any] = field(default_factory=dict)
    peak_rss: int = 0
    bound: int = 0


def _request(request_id: str, agent_type: str, timeout_ms: int) -> bytes:
    return pb.OpenChannelRequest(
        request=pb.RpcRequest(
            request_id=request_id,
            target=pb.AgentId(type=agent_type, key="k"),
            payload=_PAYLOAD,
            timeout_ms=timeout_ms,
        )
    ).SerializeToString()


async def _worker(host: PressureHost, client_id: str) -> Worker:
    worker = Worker(host.address, client_id, MODE_BATCHED)
    await worker.open()
    return worker


async def _drain(worker: Worker) -> int:
    """Read and discard frames until the channel ends; return how many were read."""
    count = 0
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        while (frames := await worker.read()) is not None:
            count += len(frames)
    return count


class Answers:
    """Collects the responses a caller receives, by request id."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.duplicates = 0
        self.other = 0
        self.last_at = 0.0

    async def collect(self, worker: Worker, expected: int) -> None:
        """Read responses until ``expected`` distinct ids were answered or the channel ends."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            while len(self.codes) < expected:
                frames = await worker.read()
                if frames is None:
                    return
                for frame in frames:
                    if not frame.HasField("response"):
                        self.other += 1
                        continue
                    request_id = frame.response.request_id
                    if request_id in self.codes:
                        self.duplicates += 1
                    self.codes[request_id] = frame.response.error_code
                self.last_at = time.monotonic()


def _tally(answers: Sequence[Answers], sent: int, outcome: Outcome) -> None:
    counts: collections.Counter[str] = collections.Counter()
    for item in answers:
        for code in item.codes.values():
            counts[pb.ErrorCode.Name(code) if code else "OK"] += 1
        outcome.duplicates += item.duplicates
    outcome.codes = dict(counts)
    outcome.unanswered = sent - sum(counts.values())


async def _wait_until(predicate: Any, what: str, within: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.02)


# -- scenarios -------------------------------------------------------------------------------


async def pending_calls_then_target_leaves(
    host: PressureHost, calls: int, callers: int = 4
) -> Outcome:
    """``calls`` RPCs (split over ``callers``) wait at a target that reads them and never
    answers; then the target's channel ends. Every call must end with TARGET_UNAVAILABLE."""
    outcome = Outcome(f"target_leaves_{calls}")
    target = await _worker(host, "target")
    await target.register("stuck")
    received = [0]

    async def read_target() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while (frames := await target.read()) is not None:
                received[0] += sum(1 for f in frames if f.HasField("request"))

    target_task = asyncio.create_task(read_target())
    workers = [await _worker(host, f"caller-{i}") for i in range(callers)]
    answers = [Answers() for _ in workers]
    per_caller = calls // callers
    rss_before = host.rss()
    outcome.figures["send_starts_at"] = round(time.time(), 3)
    readers = [
        asyncio.create_task(answer.collect(worker, per_caller))
        for worker, answer in zip(workers, answers, strict=True)
    ]
    # Paced so that the target's queue never fills: a full queue would answer OVERLOADED
    # (AWP-FLOW-002) instead of leaving the call pending.
    sent = 0
    chunk = 1_000
    for start in range(0, per_caller, chunk):
        for index, worker in enumerate(workers):
            count = min(chunk, per_caller - start)
            await worker.send(
                [_request(f"c{index}-{n}", "stuck", 300_000) for n in range(start, start + count)]
            )
            sent += count
        behind = sent - 2 * chunk
        await _wait_until(lambda: received[0] >= behind, "the target kept up")  # noqa: B023
    await _wait_until(lambda: received[0] >= sent, "the target received every request")
    rss_pending = host.rss()
    outcome.figures["target_leaves_at"] = round(time.time(), 3)
    started = time.monotonic()
    target_task.cancel()
    await target.close()
    await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
    finished = max(answer.last_at for answer in answers)
    _tally(answers, sent, outcome)
    outcome.figures |= {
        "calls": sent,
        "recovery_s": round(finished - started, 3),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_pending_mib": round(rss_pending / 2**20, 1),
        "bytes_per_call": round((rss_pending - rss_before) / sent),
    }
    for worker in workers:
        await worker.close()
    outcome.bound = memory_bound(host.config, callers + 3, frame_bytes=256, request_id_bytes=16)
    return outcome


async def non_reading_caller(
    host: PressureHost, calls: int, id_bytes: int, *, resume: bool
) -> Outcome:
    """A caller that does not read sends ``calls`` requests with ``timeout_ms=1`` and request
    ids of ``id_bytes`` bytes to a target that never answers, until the host stops reading it.
    With ``resume``, it then reads again and every call must end (DEADLINE_EXCEEDED, or
    OVERLOADED past the calls-in-flight limit); without, the host must end its channel with
    RESOURCE_EXHAUSTED and free what it held for it."""
    outcome = Outcome(f"non_reading_caller_{'resumes' if resume else 'never_reads'}")
    target = await _worker(host, "sink")
    await target.register("sink")
    target_task = asyncio.create_task(_drain(target))
    caller = await _worker(host, "silent")
    sent = [0]

    async def pump() -> None:
        step = 256
        for start in range(0, calls, step):
            frames = [
                _request(f"{n:08d}".ljust(id_bytes, "x"), "sink", 1)
                for n in range(start, min(calls, start + step))
            ]
            await caller.send(frames)
            sent[0] += len(frames)

    pump_task = asyncio.create_task(pump())
    stalled_at = await _wait_stalled(pump_task, sent, quiet_s=2.0)
    outcome.figures = {"sent_before_stall": stalled_at, "id_bytes": id_bytes}
    if resume:
        answers = Answers()
        collecting = asyncio.create_task(answers.collect(caller, calls))
        await asyncio.wait_for(pump_task, WAIT_S)
        await asyncio.wait_for(collecting, WAIT_S)
        _tally([answers], calls, outcome)
    else:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _wait_slow_consumer_ended(host)
        outcome.figures["ended_after_s"] = round(loop.time() - started, 2)
        # The status reaches the client after the frames it has not read yet.
        await asyncio.wait_for(_drain(caller), WAIT_S)
        code = await asyncio.wait_for(caller.end_code(), WAIT_S)
        pump_task.cancel()
        with contextlib.suppress(BaseException):
            await pump_task
        outcome.figures["end_code"] = code.name if code is not None else None
        outcome.figures["end_details"] = await caller.end_details()
        await _wait_until_metrics_idle(host)
        samples = await host.metrics()
        outcome.figures["undelivered"] = {
            key: value for key, value in samples.items() if "frames_undelivered" in key
        }
    await caller.close()
    target_task.cancel()
    await target.close()
    outcome.bound = memory_bound(
        host.config, 4, frame_bytes=id_bytes + 64, request_id_bytes=id_bytes
    )
    return outcome


async def _wait_stalled(task: asyncio.Task[None], sent: list[int], quiet_s: float) -> int:
    """Wait until ``task`` ends or ``sent`` has not moved for ``quiet_s``; return ``sent``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    last, since = -1, loop.time()
    while not task.done():
        await asyncio.sleep(0.1)
        now = loop.time()
        if sent[0] != last:
            last, since = sent[0], now
        elif now - since >= quiet_s:
            break
        if now > deadline:
            raise TimeoutError("the sender neither finished nor stalled")
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise RuntimeError("the sender failed") from task.exception()
    return sent[0]


async def _wait_slow_consumer_ended(host: PressureHost) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    name = "agentworker_host_slow_consumers_disconnected_total"
    while (await host.metrics()).get(name, 0) < 1:
        if loop.time() > deadline:
            raise TimeoutError("the host did not end the slow consumer")
        await asyncio.sleep(0.1)


async def _wait_until_metrics_idle(host: PressureHost) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        samples = await host.metrics()
        if (
            samples.get("agentworker_host_calls_in_flight") == 0
            and samples.get("agentworker_host_owed_frames_queued") == 0
        ):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"the host still holds calls or owed frames: {samples}")
        await asyncio.sleep(0.1)


async def stuck_subscriber(host: PressureHost, events: int, size: int) -> Outcome:
    """A publisher publishes ``size``-byte events to a topic with a subscriber that stopped
    reading and one that reads. The stuck one must be ended (RESOURCE_EXHAUSTED) and counted;
    the reading one must get every event, in order."""
    outcome = Outcome("stuck_subscriber")
    stuck = await _worker(host, "stuck")
    fast = await _worker(host, "fast")
    for worker, agent_type in ((stuck, "stuck_t"), (fast, "fast_t")):
        await worker.register(agent_type)
        await worker.subscribe(f"sub-{agent_type}", "news", agent_type)
    publisher = await _worker(host, "publisher")
    got: list[str] = []

    async def read_fast() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            while (frames := await fast.read()) is not None:
                got.extend(f.cloud_event.id for f in frames if f.HasField("cloud_event"))

    fast_task = asyncio.create_task(read_fast())
    data = b"x" * size
    sent = [0]

    async def pump() -> None:
        step = 128
        for start in range(0, events, step):
            frames = []
            for n in range(start, min(events, start + step)):
                event = pb.OpenChannelRequest()
                cloud = event.cloud_event
                cloud.id, cloud.source, cloud.spec_version, cloud.type = f"e{n}", "s", "1.0", "news"
                cloud.binary_data = data
                frames.append(event.SerializeToString())
            await publisher.send(frames)
            sent[0] += len(frames)

    pump_task = asyncio.create_task(pump())
    await _wait_slow_consumer_ended(host)
    await asyncio.wait_for(pump_task, WAIT_S)
    await asyncio.wait_for(_drain(stuck), WAIT_S)
    code = await asyncio.wait_for(stuck.end_code(), WAIT_S)
    await _wait_until(lambda: len(got) >= sent[0], "the reading subscriber got every event")
    fast_task.cancel()
    samples = await host.metrics()
    outcome.figures = {
        "published": sent[0],
        "fast_received": len(got),
        "fast_in_order": got == [f"e{n}" for n in range(sent[0])],
        "stuck_end_code": code.name if code is not None else None,
        "undelivered_events": samples.get(
            "agentworker_host_frames_undelivered_total{kind=event}", 0
        ),
    }
    for worker in (publisher, fast, stuck):
        await worker.close()
    outcome.bound = memory_bound(host.config, 6, frame_bytes=size + 64, request_id_bytes=16)
    return outcome


async def churn(host: PressureHost, connections: int, rounds: int) -> Outcome:
    """Open ``connections`` workers at once, each registering a type, subscribing and calling
    an echo agent; close them all; repeat ``rounds`` times. Every call must succeed, and the
    host's memory after the last round must stay within the bound for ``connections``."""
    outcome = Outcome("churn")
    echo = await _worker(host, "echo")
    await echo.register("echo")
    echo_task = asyncio.create_task(_echo(echo))
    answers: list[Answers] = []
    rss_open: list[int] = []
    rss_before = host.rss()
    outcome.figures["rss_before_mib"] = round(rss_before / 2**20, 1)
    for round_index in range(rounds):
        workers = await asyncio.gather(
            *(_worker(host, f"churn-{round_index}-{i}") for i in range(connections))
        )
        await asyncio.gather(
            *(_setup_churner(worker, f"churn_{i}", round_index) for i, worker in enumerate(workers))
        )
        round_answers = [Answers() for _ in workers]
        readers = [
            asyncio.create_task(answer.collect(worker, 1))
            for worker, answer in zip(workers, round_answers, strict=True)
        ]
        for i, worker in enumerate(workers):
            await worker.send([_request(f"r{round_index}-{i}", "echo", 30_000)])
        await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
        answers.extend(round_answers)
        rss_open.append(host.rss())
        await asyncio.gather(*(worker.close() for worker in workers))
        await _wait_connections(host, 1)
    _tally(answers, connections * rounds, outcome)
    outcome.figures |= {
        "connections": connections,
        "rounds": rounds,
        "rss_open_mib": [round(value / 2**20, 1) for value in rss_open],
        "rss_after_mib": round(host.rss() / 2**20, 1),
        "bytes_per_connection": round((rss_open[0] - rss_before) / connections),
    }
    echo_task.cancel()
    await echo.close()
    # Each churner has a data channel; the probe and the echo add three more.
    outcome.bound = memory_bound(host.config, connections + 3, frame_bytes=256, request_id_bytes=16)
    return outcome


async def _setup_churner(worker: Worker, agent_type: str, round_index: int) -> None:
    await worker.register(agent_type)
    await worker.subscribe(f"{agent_type}-{round_index}", f"topic_{agent_type}", agent_type)


async def _wait_connections(host: PressureHost, expected: int) -> None:
    # The probe holds two data channels of its own.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while (await host.metrics()).get("agentworker_host_connections_open") != expected + 2:
        if loop.time() > deadline:
            raise TimeoutError("closed connections are still open at the host")
        await asyncio.sleep(0.05)


async def _echo(worker: Worker) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        while (frames := await worker.read()) is not None:
            replies = [
                pb.OpenChannelRequest(
                    response=pb.RpcResponse(request_id=f.request.request_id, payload=_PAYLOAD)
                ).SerializeToString()
                for f in frames
                if f.HasField("request")
            ]
            if replies:
                await worker.send(replies)


async def undecodable_frame(host: PressureHost, calls: int) -> Outcome:
    """A target with ``calls`` pending sends bytes that do not decode. Its stream must end with
    INTERNAL, every pending call with TARGET_UNAVAILABLE, and its type must be free again."""
    outcome = Outcome("undecodable_frame")
    target = await _worker(host, "garbler")
    await target.register("garbled")
    received = [0]

    async def read_target() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            while (frames := await target.read()) is not None:
                received[0] += sum(1 for f in frames if f.HasField("request"))

    target_task = asyncio.create_task(read_target())
    caller = await _worker(host, "garble-caller")
    answers = Answers()
    reader = asyncio.create_task(answers.collect(caller, calls))
    await caller.send([_request(f"g{n}", "garbled", 300_000) for n in range(calls)])
    await _wait_until(lambda: received[0] >= calls, "the target received every request")
    await target.send_raw(b"\xff\xff\xff\xff")
    code = await asyncio.wait_for(target.end_code(), WAIT_S)
    await asyncio.wait_for(reader, WAIT_S)
    target_task.cancel()
    _tally([answers], calls, outcome)
    successor = await _worker(host, "garble-successor")
    await successor.register("garbled")
    outcome.figures = {"target_end_code": code.name if code is not None else None}
    for worker in (successor, caller, target):
        await worker.close()
    outcome.bound = memory_bound(host.config, 6, frame_bytes=256, request_id_bytes=16)
    return outcome


# -- running ----------------------------------------------------------------------------------


async def run_scenario(
    config: HostConfig, log_dir: Path, scenario: Any, *args: Any, **kwargs: Any
) -> Outcome:
    """Start a host with ``config`` and a probe, run ``scenario(host, ...)``, stop both."""
    host = PressureHost(log_dir, config)
    await host.start()
    probe = Probe(host.address)
    try:
        await probe.start()
        outcome: Outcome = await scenario(host, *args, **kwargs)
        outcome.probe = await probe.stop()
        outcome.peak_rss = host.peak_rss()
        if not host.alive():
            raise RuntimeError(f"the host died:\n{host.log_tail()}")
        return outcome
    finally:
        probe.kill()
        host.stop()


def _row(outcome: Outcome) -> str:
    probe = outcome.probe
    return (
        f"| {outcome.name} | {outcome.codes} | {outcome.unanswered} | "
        f"{_kib(outcome.peak_rss) / 1024:.1f} | {_kib(outcome.bound) / 1024:.0f} | "
        f"{probe.get('probes')} | {probe.get('max_s')} | {probe.get('p99_s')} | "
        f"{json.dumps(outcome.figures)} |"
    )


async def run_bench(log_dir: Path, quick: bool) -> list[Outcome]:
    """Run the pressure bench; return every outcome."""
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 40_000)
    outcomes: list[Outcome] = []
    base = HostConfig()
    for size in sizes:
        outcomes.append(
            await run_scenario(base, log_dir, pending_calls_then_target_leaves, size, 4)
        )
    outcomes.append(await run_scenario(base, log_dir, churn, 300, 1))
    short = HostConfig(slow_consumer_timeout_ms=3_000)
    outcomes.append(
        await run_scenario(short, log_dir, non_reading_caller, 40_000, 2048, resume=False)
    )
    return outcomes


def write_report(outcomes: Sequence[Outcome], out_dir: Path, name: str) -> Path:
    """Write the outcomes as ``name``.json and ``name``.md; return the markdown path."""
    data = [
        {
            "name": o.name,
            "codes": o.codes,
            "unanswered": o.unanswered,
            "duplicates": o.duplicates,
            "peak_rss_bytes": o.peak_rss,
            "bound_bytes": o.bound,
            "probe": o.probe,
            "figures": o.figures,
        }
        for o in outcomes
    ]
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Reference host under pressure",
        "",
        "`python -m bench.pressure`: each row is a fresh host subprocess (default limits unless",
        "the scenario says otherwise) with a probe process calling an echo agent every 50 ms.",
        "",
        "| scenario | calls ended with | unanswered | peak RSS MiB | bound MiB | probes | "
        "probe max s | probe p99 s | figures |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_row(o) for o in outcomes),
        "",
    ]
    lines += _summary(outcomes)
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    return path


def _summary(outcomes: Sequence[Outcome]) -> list[str]:
    """Return the Markdown lines of the headline figures: recovery time by N, memory costs."""
    leaves = [o for o in outcomes if o.name.startswith("target_leaves_")]
    lines = [
        "## Time to answer N calls pending at a target that leaves",
        "",
        "| N | recovery s | host memory per call in flight, B | probe max s | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for o in leaves:
        lines.append(
            f"| {o.figures['calls']:,} | {o.figures['recovery_s']} | "
            f"{o.figures['bytes_per_call']} | {o.probe.get('max_s')} | "
            f"{o.peak_rss / 2**20:.1f} |"
        )
    churned = [o for o in outcomes if o.name == "churn"]
    lines += ["", "## Memory constants (spec 12.3, reference_host/_memory.py)", ""]
    lines.append(
        f"Documented: K0 {K0_BYTES // 2**20} MiB, Kc {KC_BYTES // 1024} KiB, "
        f"Kf {KF_BYTES} B, Kn {KN_BYTES} B."
    )
    measured = [f"per call in flight {o.figures['bytes_per_call']} B ({o.name})" for o in leaves]
    measured += [f"per connection {o.figures['bytes_per_connection']} B (churn)" for o in churned]
    measured += [f"idle host {o.figures['rss_before_mib']} MiB ({o.name})" for o in leaves[:1]]
    lines += [f"Measured here: {'; '.join(measured)}.", ""]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pressure bench and write its results."""
    parser = argparse.ArgumentParser(prog="python -m bench.pressure", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N = 1k and 10k only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--name", default="pressure", help="results file name")
    args = parser.parse_args(argv)
    log_dir = make_log_dir()
    print(f"host logs in {log_dir}", flush=True)
    outcomes = asyncio.run(run_bench(log_dir, args.quick))
    path = write_report(outcomes, Path(args.out), args.name)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
