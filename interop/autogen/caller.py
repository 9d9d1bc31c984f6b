"""An AutoGen worker that sends RPCs (and publishes) on request, for tests and measurements.

It starts a `GrpcWorkerAgentRuntime` with no agents and then works in one of two modes.

Command mode (default): it reads one JSON command per line on stdin and answers on stdout.
Calls run concurrently; each result line names the command's id.

    {"op": "call", "id": "c1", "target": ["type", "key"], "type": "Ping",
     "body": {"text": "hi", "seq": 1}, "timeout": 20}
        -> {"event": "result", "id": "c1", "ok": true, "reply_type": "Pong",
            "reply_encoding": "json", "reply": {...}, "request_id": "1", "seconds": 0.01}
        -> {"event": "result", "id": "c1", "ok": false, "error": "...",
            "timed_out": false, "request_id": "1", "seconds": 0.01}

    A reply AutoGen could not decode (it returns an UnknownPayload instead of raising) gives
    "ok": false with its "reply_type" and no "error".
    {"op": "publish", "topic": ["type", "source"], "type": "Ping", "body": {...},
     "encoding": "json" | "protobuf"}          -> {"event": "published", ...}
    {"op": "exit"}                              -> stops the runtime and exits 0

`type` names a JSON message of interop_common (Ping, Stall, Fail, PublishRequest, CallRequest,
...) or a protobuf message by its full name (agentworker.conformance.v1.Ping). `timeout`
(seconds, default 30) bounds the wait on this side only: AutoGen's runtime itself never gives up
on a call, so a result with "timed_out": true means that no answer came at all. `request_id` is
the id AutoGen put on the wire (its runtime numbers requests 1, 2, 3, ...).

Batch mode (--call TYPE/KEY): it sends --count Pings with at most --concurrency in flight,
then prints one summary line and exits (0 when every call succeeded):

    {"event": "summary", "calls": 100, "ok": 100, "errors": {}, "seconds": 0.8,
     "calls_per_second": 125.0, "latency_ms": {"p50": ..., "p90": ..., "p99": ..., "max": ...}}

Usage (with interop/autogen/.venv/bin/python):

    caller.py --host 127.0.0.1:50051 [--name caller-a]
    caller.py --host 127.0.0.1:50051 --call ag_mixed/k1 --count 1000 --concurrency 16

Command mode also ends when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import statistics
import sys
import time
from collections import Counter
from typing import Any

from autogen_core import (
    PROTOBUF_DATA_CONTENT_TYPE,
    AgentId,
    TopicId,
    UnknownPayload,
)
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime
from interop_common import JSON_TYPES, PROTOBUF_TYPES, Ping, add_serializers, describe, emit

_current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "interop_call", default=None
)


class Caller:
    """One AutoGen runtime (and a protobuf-publishing twin, made on first use)."""

    def __init__(self, host: str, name: str) -> None:
        self.host = host
        self.name = name
        self.runtime = GrpcWorkerAgentRuntime(host_address=host)
        self._protobuf: GrpcWorkerAgentRuntime | None = None
        self.request_ids: dict[str, str] = {}  # command id -> request id put on the wire

    async def start(self) -> None:
        await self.runtime.start()
        add_serializers(self.runtime)
        self._watch_request_ids()

    def _watch_request_ids(self) -> None:
        """Notes the request id of each outgoing request frame. AutoGen sends each request from
        a task created inside send_message, which inherits the caller's context, so the
        context variable names the command the frame belongs to. Observation only."""
        connection = getattr(self.runtime, "_host_connection", None)
        original = getattr(connection, "send", None)
        if connection is None or original is None:
            return

        async def send(message: Any) -> None:
            call = _current_call.get()
            if call is not None and message.WhichOneof("message") == "request":
                self.request_ids[call] = message.request.request_id
            await original(message)

        connection.send = send

    async def stop(self) -> None:
        if self._protobuf is not None:
            await self._protobuf.stop()
        await self.runtime.stop()

    async def call(
        self,
        call_id: str,
        target: AgentId,
        message: object,
        timeout: float,  # noqa: ASYNC109 - the per-call limit on this side
    ) -> dict[str, Any]:
        token = _current_call.set(call_id)
        started = time.monotonic()
        try:
            reply = await asyncio.wait_for(self.runtime.send_message(message, target), timeout)
        except TimeoutError:
            outcome: dict[str, Any] = {
                "ok": False,
                "error": f"no reply within {timeout} s",
                "timed_out": True,
            }
        except Exception as exc:  # AutoGen raises a bare Exception carrying the error string
            outcome = {
                "ok": False,
                "error": str(exc),
                "error_class": type(exc).__name__,
                "timed_out": False,
            }
        else:
            described = describe(reply)
            outcome = {
                "ok": not isinstance(reply, UnknownPayload),
                "reply_type": described["type"],
                "reply_encoding": described["encoding"],
                "reply": described.get("body"),
            }
        finally:
            _current_call.reset(token)
        outcome["seconds"] = round(time.monotonic() - started, 4)
        outcome["request_id"] = self.request_ids.pop(call_id, None)
        return outcome

    async def publish(self, topic: TopicId, message: object, encoding: str) -> None:
        if encoding == "protobuf":
            if self._protobuf is None:
                self._protobuf = GrpcWorkerAgentRuntime(
                    host_address=self.host,
                    payload_serialization_format=PROTOBUF_DATA_CONTENT_TYPE,
                )
                await self._protobuf.start()
                add_serializers(self._protobuf)
            await self._protobuf.publish_message(message, topic)
        else:
            await self.runtime.publish_message(message, topic)


def build_message(type_name: str, body: dict[str, Any]) -> object:
    if type_name in JSON_TYPES:
        return JSON_TYPES[type_name](**body)
    if type_name in PROTOBUF_TYPES:
        return PROTOBUF_TYPES[type_name](**body)
    raise ValueError(f"unknown message type {type_name!r}")


async def command_mode(caller: Caller) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()

    async def run_call(command: dict[str, Any]) -> None:
        call_id = str(command.get("id", ""))
        try:
            target = AgentId(*command["target"])
            message = build_message(command.get("type", "Ping"), command.get("body", {}))
        except (KeyError, TypeError, ValueError) as exc:
            emit("result", id=call_id, ok=False, error=f"bad command: {exc}", timed_out=False)
            return
        outcome = await caller.call(call_id, target, message, float(command.get("timeout", 30)))
        emit("result", id=call_id, **outcome)

    emit("ready", name=caller.name)
    while line := await reader.readline():
        try:
            command = json.loads(line)
            op = command.get("op")
        except (ValueError, AttributeError):
            emit("error", error=f"not a JSON command: {line!r}")
            continue
        if op == "call":
            task = loop.create_task(run_call(command))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif op == "publish":
            try:
                message = build_message(command.get("type", "Ping"), command.get("body", {}))
                topic = TopicId(*command["topic"])
                await caller.publish(topic, message, command.get("encoding", "json"))
            except (KeyError, TypeError, ValueError) as exc:
                emit("error", error=f"bad publish: {exc}")
                continue
            emit("published", id=command.get("id"), topic=command["topic"])
        elif op == "exit":
            break
        else:
            emit("error", error=f"unknown op {op!r}")
    for task in list(tasks):
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def batch_mode(caller: Caller, args: argparse.Namespace) -> bool:
    target_type, _, target_key = args.call.partition("/")
    target = AgentId(target_type, target_key or "default")
    slots = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def one(seq: int) -> None:
        async with slots:
            outcome = await caller.call(
                str(seq), target, Ping(text=f"{caller.name}-{seq}", seq=seq), args.timeout
            )
        if outcome["ok"]:
            latencies.append(outcome["seconds"])
        else:
            errors[outcome["error"]] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(seq) for seq in range(1, args.count + 1)))
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)

    def pick(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    emit(
        "summary",
        calls=args.count,
        ok=len(latencies),
        errors=dict(errors),
        seconds=round(elapsed, 3),
        calls_per_second=round(args.count / elapsed, 1) if elapsed > 0 else None,
        latency_ms={
            "p50": pick(0.5),
            "p90": pick(0.9),
            "p99": pick(0.99),
            "max": pick(1.0),
            "mean": round(statistics.fmean(ordered) * 1000, 3) if ordered else None,
        },
    )
    return not errors


async def main(args: argparse.Namespace) -> int:
    caller = Caller(args.host, args.name)
    await caller.start()
    try:
        if args.call:
            return 0 if await batch_mode(caller, args) else 1
        await command_mode(caller)
        return 0
    finally:
        await caller.stop()
        emit("stopped", name=caller.name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost:50051", help="host address HOST:PORT")
    parser.add_argument("--name", default="caller", help="a name for this caller's output")
    parser.add_argument("--call", metavar="TYPE/KEY", help="batch mode: the agent to call")
    parser.add_argument("--count", type=int, default=100, help="batch mode: number of calls")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="batch mode: calls in flight at once"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="batch mode: seconds to wait per call"
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.concurrency < 1:
        parser.error("--count and --concurrency must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
