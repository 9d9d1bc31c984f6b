"""A liveness probe run as its own process: one RPC through the host every interval.

``python -m bench.probe ADDRESS [INTERVAL_MS]`` connects an echo worker and a caller to the host
at ADDRESS, prints ``ready`` once both are registered, then calls the echo agent every interval
(one call at a time) until its stdin closes. It then prints one JSON line: the number of probes,
their latencies (max, median, 99th percentile, in seconds) and the probes that failed (an error
response, or no answer within ``PROBE_TIMEOUT_S``). Running apart from the load generators, it
sees the host as another worker would.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Final

from agentworker.v1 import agentworker_pb2 as pb

from .clients import MODE_BATCHED, Worker

PROBE_TIMEOUT_S: Final = 10.0
_PAYLOAD: Final = pb.Payload(data_type="Ping", data_content_type="application/json", data=b"1")


async def _echo(worker: Worker) -> None:
    while (frames := await worker.read()) is not None:
        replies = [
            pb.OpenChannelRequest(
                response=pb.RpcResponse(request_id=frame.request.request_id, payload=_PAYLOAD)
            ).SerializeToString()
            for frame in frames
            if frame.HasField("request")
        ]
        if replies:
            await worker.send(replies)


async def _wait_stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def run(address: str, interval_s: float) -> dict[str, object]:
    """Probe the host at ``address`` until stdin closes; return the summary."""
    tag = uuid.uuid4().hex[:8]
    agent_type = f"probe_echo_{tag}"
    echo = Worker(address, f"probe-echo-{tag}", MODE_BATCHED)
    caller = Worker(address, f"probe-caller-{tag}", MODE_BATCHED)
    await echo.open()
    await caller.open()
    await echo.register(agent_type)
    echo_task = asyncio.create_task(_echo(echo))
    stop = asyncio.create_task(_wait_stdin_closed())
    print("ready", flush=True)
    latencies: list[float] = []
    # (wall-clock start, latency) of the slowest probes, to place them on a timeline.
    slowest: list[tuple[float, float]] = []
    failures: list[str] = []
    sequence = 0
    while not stop.done():
        sequence += 1
        request_id = f"p{sequence}"
        frame = pb.OpenChannelRequest(
            request=pb.RpcRequest(
                request_id=request_id,
                target=pb.AgentId(type=agent_type, key="k"),
                payload=_PAYLOAD,
                timeout_ms=int(PROBE_TIMEOUT_S * 1000),
            )
        ).SerializeToString()
        started = time.monotonic()
        await caller.send([frame])
        try:
            frames = await asyncio.wait_for(caller.read(), PROBE_TIMEOUT_S)
        except TimeoutError:
            failures.append(f"{request_id}: no answer in {PROBE_TIMEOUT_S} s")
            latencies.append(PROBE_TIMEOUT_S)
            break
        elapsed = time.monotonic() - started
        if frames is None:
            failures.append(f"{request_id}: the caller's channel ended")
            break
        latencies.append(elapsed)
        slowest.append((round(time.time() - elapsed, 3), round(elapsed, 4)))
        slowest = sorted(slowest, key=lambda item: -item[1])[:5]
        for got in frames:
            if got.HasField("response") and got.response.error:
                failures.append(f"{got.response.request_id}: {got.response.error}")
        await asyncio.wait({stop}, timeout=interval_s)
    echo_task.cancel()
    await caller.close()
    await echo.close()
    ordered = sorted(latencies) or [0.0]
    return {
        "probes": len(latencies),
        "max_s": round(ordered[-1], 4),
        "p50_s": round(ordered[len(ordered) // 2], 4),
        "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
        "failures": failures,
        "slowest": slowest,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; print its summary as one JSON line."""
    args = list(sys.argv[1:] if argv is None else argv)
    interval_s = float(args[1]) / 1000.0 if len(args) > 1 else 0.05
    summary = asyncio.run(run(args[0], interval_s))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    sys.exit(main())
