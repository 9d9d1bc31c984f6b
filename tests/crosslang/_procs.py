"""Processes and a raw worker shared by the cross-language tests.

Builds the Go and TypeScript conformance workers (once per test session), starts the reference
host and worker subprocesses, and provides ``RawWorker``, a worker connection written frame by
frame from the generated Python stubs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import itertools
import json
import os
import pathlib
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.conformance.v1 import contract_pb2 as cpb
from agentworker.v1 import agentworker_pb2 as pb
from agentworker.v1 import agentworker_pb2_grpc as pb_grpc
from tests.pki import SERVER_NAME

ROOT: Final = pathlib.Path(__file__).resolve().parents[2]
GO_MODULE: Final = ROOT / "workers" / "go"
TS_DIR: Final = ROOT / "workers" / "typescript"
TIMEOUT_S: Final = 15.0
BUILD_TIMEOUT_S: Final = 600.0
HELLO_KEY: Final = "agentworker-hello-bin"
HARNESS_TYPE: Final = "harness"
SINK_TYPE: Final = "harness-sink"


# -- builds ----------------------------------------------------------------------------------


@functools.cache
def go_worker_binary() -> pathlib.Path:
    """Builds workers/go/cmd/conformance-worker once per session; returns the binary."""
    go = shutil.which("go")
    assert go is not None, "the Go toolchain (go) is not on PATH"
    out = pathlib.Path(tempfile.mkdtemp(prefix="agentworker-go-")) / "conformance-worker"
    subprocess.run(
        [go, "build", "-o", str(out), "./cmd/conformance-worker"],
        cwd=GO_MODULE,
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return out


@contextlib.contextmanager
def _build_lock(within: float = 900.0) -> Iterator[None]:
    """Serializes builds of the package by test runs on this machine (npm ci is not reentrant)."""
    path = pathlib.Path(tempfile.gettempdir()) / "agentworker-typescript-build.lock"
    with path.open("w") as lock:
        deadline = time.monotonic() + within
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "another build of workers/typescript hangs"
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.cache
def typescript_worker_script() -> pathlib.Path:
    """Installs the pinned dependencies and compiles workers/typescript once per session;
    returns the conformance worker script."""
    npm = shutil.which("npm")
    assert npm is not None, "npm is required to build workers/typescript"
    steps = (([npm, "ci", "--no-audit", "--no-fund"], 600), ([npm, "exec", "tsc"], 300))
    with _build_lock():
        for command, limit in steps:
            done = subprocess.run(
                command, cwd=TS_DIR, capture_output=True, text=True, timeout=limit
            )
            assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    script = TS_DIR / "dist" / "conformance-worker.js"
    assert script.is_file()
    return script


# -- processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], within: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {within} s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT_S)
    return proc.returncode


@dataclass
class Host:
    """A reference host subprocess."""

    port: int
    proc: subprocess.Popen[bytes]
    log: pathlib.Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_host(log_dir: pathlib.Path, port: int | None = None, *extra: str) -> Host:
    port = port or _free_port()
    log = log_dir / f"host-{port}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference_host", "--address", f"127.0.0.1:{port}", *extra],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_port(port, proc)
    return Host(port, proc, log)


@dataclass
class WorkerProcess:
    """A conformance worker subprocess; its stdout lines arrive in ``lines``."""

    proc: subprocess.Popen[bytes]
    client_id: str
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def wait_line(self, text: str, within: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the worker never printed {text!r}"
            try:
                if self.lines.get(timeout=remaining).strip() == text:
                    return
            except queue.Empty:
                continue


def start_worker(
    command: pathlib.Path | Sequence[str],
    address: str,
    stderr: pathlib.Path,
    cwd: pathlib.Path | None = None,
    /,
    **env: str,
) -> WorkerProcess:
    """Starts a conformance worker (a binary or an argv) and waits for its "ready" line."""
    argv = [str(command)] if isinstance(command, pathlib.Path) else list(command)
    client_id = env.pop("AGENTWORKER_CLIENT_ID", "") or f"worker-{uuid.uuid4()}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWORKER_")}
    environ.update(
        AGENTWORKER_HOST_ADDRESS=address,
        AGENTWORKER_CLIENT_ID=client_id,
        AGENTWORKER_LOG_LEVEL="INFO",
        **env,
    )
    with stderr.open("ab") as err:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    worker = WorkerProcess(proc, client_id)

    def pump() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                worker.lines.put(line.decode(errors="replace"))

    threading.Thread(target=pump, daemon=True).start()
    worker.wait_line("ready")
    return worker


# -- a raw worker built on the generated stubs ---------------------------------------------


def json_payload(data_type: str, body: object) -> pb.Payload:
    return pb.Payload(
        data_type=data_type, data_content_type="application/json", data=json.dumps(body).encode()
    )


def proto_payload(message: Message) -> pb.Payload:
    envelope = any_pb2.Any()
    envelope.Pack(message)
    return pb.Payload(
        data_type=message.DESCRIPTOR.full_name,
        data_content_type="application/x-protobuf",
        data=envelope.SerializeToString(),
    )


def unpack(payload: pb.Payload, message: Message) -> None:
    assert payload.data_content_type == "application/x-protobuf"
    assert payload.data_type == message.DESCRIPTOR.full_name
    envelope = any_pb2.Any.FromString(payload.data)
    assert envelope.type_url == f"type.googleapis.com/{message.DESCRIPTOR.full_name}"
    assert envelope.Unpack(message)


def attr(event: ce.CloudEvent, name: str) -> str:
    value = event.attributes[name]
    assert value.WhichOneof("attr") == "ce_string", name
    return value.ce_string


class RawWorker:
    """A worker connection written frame by frame: sends requests and events, collects the
    responses (by request id), events and requests the host delivers."""

    def __init__(
        self,
        address: str,
        credentials: grpc.ChannelCredentials | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client_id = client_id or f"raw-{uuid.uuid4()}"
        self.metadata: tuple[tuple[str, str], ...] = (("client-id", self.client_id),)
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(address)
        else:
            options = (("grpc.ssl_target_name_override", SERVER_NAME),)
            self.channel = grpc.aio.secure_channel(address, credentials, options)
        self.stub = pb_grpc.AgentRpcServiceStub(self.channel)
        self.events: asyncio.Queue[ce.CloudEvent] = asyncio.Queue()
        self.requests: asyncio.Queue[pb.RpcRequest] = asyncio.Queue()
        self._out: asyncio.Queue[pb.OpenChannelRequest | None] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[pb.RpcResponse]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def _frames(self) -> AsyncIterator[pb.OpenChannelRequest]:
        while (frame := await self._out.get()) is not None:
            yield frame

    async def open(self, *subscriptions: pb.Subscription, token: str | None = None) -> None:
        if token is not None:
            self.metadata += (("authorization", f"Bearer {token}"),)
        hello = pb.ChannelHello(protocol_version=1, implementation="tests/crosslang (python)")
        call = self.stub.OpenChannel(
            self._frames(), metadata=(*self.metadata, (HELLO_KEY, hello.SerializeToString()))
        )
        await asyncio.wait_for(call.initial_metadata(), TIMEOUT_S)
        self._reader = asyncio.create_task(self._read(call))
        for agent_type in (HARNESS_TYPE, SINK_TYPE):
            register = pb.RegisterAgentRequest(type=agent_type)
            await self.stub.RegisterAgent(register, metadata=self.metadata, timeout=TIMEOUT_S)
        for subscription in subscriptions:
            add = pb.AddSubscriptionRequest(subscription=subscription)
            await self.stub.AddSubscription(add, metadata=self.metadata, timeout=TIMEOUT_S)

    async def _read(self, call: AsyncIterator[pb.OpenChannelResponse]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for frame in call:
                frames = frame.batch.messages if frame.HasField("batch") else [frame]
                for inner in frames:
                    kind = inner.WhichOneof("message")
                    if kind == "response":
                        future = self._pending.pop(inner.response.request_id, None)
                        if future is not None and not future.done():
                            future.set_result(inner.response)
                    elif kind == "cloud_event":
                        self.events.put_nowait(inner.cloud_event)
                    elif kind == "request":
                        self.requests.put_nowait(inner.request)

    async def close(self) -> None:
        await self._out.put(None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.channel.close(None)

    async def call(
        self, target: pb.AgentId, payload: pb.Payload, timeout_ms: int = 10_000
    ) -> pb.RpcResponse:
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[pb.RpcResponse] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = pb.RpcRequest(
            request_id=request_id, target=target, payload=payload, timeout_ms=timeout_ms
        )
        await self._out.put(pb.OpenChannelRequest(request=request))
        return await asyncio.wait_for(future, timeout_ms / 1000 + TIMEOUT_S)

    async def command(self, key: str, command: cpb.Command) -> pb.RpcResponse:
        if not command.deadline_ms:
            command.deadline_ms = 10_000
        return await self.call(conformance(key), proto_payload(command))

    async def answer(self, response: pb.RpcResponse) -> None:
        await self._out.put(pb.OpenChannelRequest(response=response))

    async def publish(self, event: ce.CloudEvent) -> None:
        await self._out.put(pb.OpenChannelRequest(cloud_event=event))

    async def next_event(
        self, accept: Callable[[ce.CloudEvent], bool], within: float = TIMEOUT_S
    ) -> ce.CloudEvent:
        async with asyncio.timeout(within):
            while True:
                event = await self.events.get()
                if accept(event):
                    return event


def conformance(key: str) -> pb.AgentId:
    return pb.AgentId(type="conformance", key=key)


def type_sub(topic_type: str, agent_type: str = HARNESS_TYPE) -> pb.Subscription:
    rule = pb.TypeSubscription(topic_type=topic_type, agent_type=agent_type)
    return pb.Subscription(id=str(uuid.uuid4()), type_subscription=rule)


def new_key() -> str:
    return uuid.uuid4().hex[:12]


def command_result(response: pb.RpcResponse) -> cpb.CommandResult:
    assert response.error == "", response.error
    assert response.error_code == pb.ERROR_CODE_UNSPECIFIED
    result = cpb.CommandResult()
    unpack(response.payload, result)
    return result
