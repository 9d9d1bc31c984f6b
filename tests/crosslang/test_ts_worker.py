"""The TypeScript worker (workers/typescript) driven over the wire.

The package is installed and compiled with `npm ci` and `tsc`; its conformance agents run as a
Node process against the reference host (a subprocess) or against a fake host written here.
The tests speak the wire with raw clients built from the generated Python stubs only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from google.protobuf import any_pb2
from google.protobuf.message import Message

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from tests.crosslang._procs import typescript_worker_script
from tests.pki import SERVER_NAME

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / "workers" / "typescript"
SERVICE = "agentworker.v1.AgentRpcService"
HELLO_KEY = "agentworker-hello-bin"
WELCOME_KEY = "agentworker-welcome-bin"
WAIT_S = 20.0  # generous for a loaded machine; every wait ends as soon as its event happens
PROTOBUF = "application/x-protobuf"
JSON_TYPE = "application/json"

M = TypeVar("M", bound=Message)


def _path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "gen" / "python"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


# -- build ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def worker_script() -> Path:
    """Installs the pinned dependencies and compiles the package; returns the worker script."""
    return typescript_worker_script()


async def _run_in_package(*command: str) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=TS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(300):
            out, _ = await process.communicate()
    finally:
        await stop_process(process)
    return process.returncode, out.decode(errors="replace")


async def test_unit_tests_pass(worker_script: Path) -> None:
    """Runs the package's own unit tests (node --test) on the compiled output."""
    code, out = await _run_in_package("node", "--test")
    assert code == 0, out
    assert "# fail 0" in out


async def test_sources_are_formatted(worker_script: Path) -> None:
    """Checks the sources with the pinned prettier."""
    prettier = TS_DIR / "node_modules" / ".bin" / "prettier"
    code, out = await _run_in_package(str(prettier), "--check", "src", "README.md")
    assert code == 0, out


# -- processes --------------------------------------------------------------------------


class Host:
    """The reference host as a subprocess on a fixed port (so it can be restarted)."""

    def __init__(self, tmp: Path, port: int, *args: str) -> None:
        self.address = f"127.0.0.1:{port}"
        self._args = args
        self._log = tmp / f"host-{port}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "reference_host",
                "--address",
                self.address,
                *self._args,
                env=_python_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        host, port = self.address.split(":")
        while True:
            assert self.process.returncode is None, self._log.read_text()
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(host, int(port))
                writer.close()
                return
            assert loop.time() < deadline, "the reference host did not start"
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        if self.process is not None:
            await stop_process(self.process)


async def start_worker(
    script: Path, address: str, tmp: Path, **env: str
) -> asyncio.subprocess.Process:
    """Starts the TypeScript conformance worker and waits for its "ready" line."""
    log = (tmp / f"worker-{uuid.uuid4().hex[:8]}.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        cwd=TS_DIR,
        env={**os.environ, "AGENTWORKER_HOST_ADDRESS": address, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    log.close()
    assert process.stdout is not None
    async with asyncio.timeout(WAIT_S):
        line = await process.stdout.readline()
    assert line.strip() == b"ready", line
    return process


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


# -- a raw peer ---------------------------------------------------------------------------


def _unpack(frame: pb.OpenChannelResponse) -> list[pb.OpenChannelResponse]:
    if frame.WhichOneof("message") == "batch":
        return list(frame.batch.messages)
    return [frame]


def proto_payload(message: Message) -> pb.Payload:
    envelope = any_pb2.Any()
    envelope.Pack(message)
    return pb.Payload(
        data_type=message.DESCRIPTOR.full_name,
        data_content_type=PROTOBUF,
        data=envelope.SerializeToString(),
    )


def json_payload(data_type: str, value: object) -> pb.Payload:
    return pb.Payload(
        data_type=data_type, data_content_type=JSON_TYPE, data=json.dumps(value).encode()
    )


def unpack_payload(payload: pb.Payload, cls: type[M]) -> M:
    assert payload.data_content_type == PROTOBUF
    assert payload.data_type == cls.DESCRIPTOR.full_name
    envelope = any_pb2.Any.FromString(payload.data)
    assert envelope.type_url == f"type.googleapis.com/{cls.DESCRIPTOR.full_name}"
    message = cls()
    assert envelope.Unpack(message)
    return message


def command(case: str, deadline_ms: int = 10_000, **action: Any) -> pb.Payload:
    return proto_payload(cp.Command(case_id=case, deadline_ms=deadline_ms, **action))


class Peer:
    """A worker connection made of raw frames: the tests' side of the wire."""

    def __init__(
        self,
        address: str,
        credentials: grpc.ChannelCredentials | None = None,
        options: tuple[tuple[str, str | int], ...] = (),
        token: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client_id = client_id or f"peer-{uuid.uuid4()}"
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)
        self.metadata: tuple[tuple[str, str], ...] = (("client-id", self.client_id),)
        if token is not None:
            self.metadata += (("authorization", f"Bearer {token}"),)
        self.events: asyncio.Queue[ce.CloudEvent] = asyncio.Queue()
        self._responses: dict[str, asyncio.Future[pb.RpcResponse]] = {}
        self._ids = 0
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def unary(self, method: str, request: Message, response: type[M]) -> M:
        call = self.channel.unary_unary(
            _path(method),
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        result: M = await call(request, metadata=self.metadata, timeout=WAIT_S)
        return result

    async def open(self, agent_type: str = "probe", topics: tuple[str, ...] = ()) -> None:
        hello = pb.ChannelHello(protocol_version=1, implementation="tests/crosslang (python)")
        open_channel = self.channel.stream_stream(
            _path("OpenChannel"),
            request_serializer=pb.OpenChannelRequest.SerializeToString,
            response_deserializer=pb.OpenChannelResponse.FromString,
        )
        self._call = open_channel(
            None, metadata=(*self.metadata, (HELLO_KEY, hello.SerializeToString()))
        )
        self._reader = asyncio.create_task(self._read())
        await self.unary(
            "RegisterAgent", pb.RegisterAgentRequest(type=agent_type), pb.RegisterAgentResponse
        )
        for topic in topics:
            rule = pb.TypeSubscription(topic_type=topic, agent_type=agent_type)
            sub = pb.Subscription(id=str(uuid.uuid4()), type_subscription=rule)
            await self.unary(
                "AddSubscription",
                pb.AddSubscriptionRequest(subscription=sub),
                pb.AddSubscriptionResponse,
            )

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for frame in self._call:
                for item in _unpack(frame):
                    kind = item.WhichOneof("message")
                    if kind == "response":
                        future = self._responses.pop(item.response.request_id, None)
                        if future is not None and not future.done():
                            future.set_result(item.response)
                    elif kind == "cloud_event":
                        self.events.put_nowait(item.cloud_event)

    async def call(
        self,
        payload: pb.Payload,
        key: str = "c1",
        agent_type: str = "conformance",
        timeout_ms: int = 10_000,
    ) -> pb.RpcResponse:
        self._ids += 1
        request_id = f"r{self._ids}"
        future: asyncio.Future[pb.RpcResponse] = asyncio.get_running_loop().create_future()
        self._responses[request_id] = future
        request = pb.RpcRequest(
            request_id=request_id,
            source=pb.AgentId(type="probe", key="p"),
            target=pb.AgentId(type=agent_type, key=key),
            payload=payload,
            timeout_ms=timeout_ms,
        )
        await self._call.write(pb.OpenChannelRequest(request=request))
        async with asyncio.timeout(timeout_ms / 1000 + WAIT_S):
            return await future

    async def result(self, payload: pb.Payload, key: str = "c1") -> cp.CommandResult:
        response = await self.call(payload, key)
        assert response.error == "", response
        return unpack_payload(response.payload, cp.CommandResult)

    async def publish(self, event: ce.CloudEvent) -> None:
        await self._call.write(pb.OpenChannelRequest(cloud_event=event))

    async def next_event(self) -> ce.CloudEvent:
        async with asyncio.timeout(WAIT_S):
            return await self.events.get()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.channel.close(grace=None)


def attr(event: ce.CloudEvent, name: str) -> str:
    value = event.attributes[name]
    assert value.WhichOneof("attr") == "ce_string", (name, value)
    return value.ce_string


def ping_event(topic_type: str, source: str, text: str, seq: int) -> ce.CloudEvent:
    value = ce.CloudEvent.CloudEventAttributeValue
    return ce.CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        spec_version="1.0",
        type=topic_type,
        attributes={
            "datacontenttype": value(ce_string=JSON_TYPE),
            "dataschema": value(ce_string="Ping"),
            "agagentsendertype": value(ce_string="probe"),
            "agagentsenderkey": value(ce_string="p"),
            "agmsgkind": value(ce_string="publish"),
        },
        binary_data=json.dumps({"text": text, "seq": seq}).encode(),
    )


# -- fixtures: the reference host with one TypeScript worker ------------------------------


@pytest_asyncio.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    process = Host(tmp_path, _free_port(), "--default-rpc-timeout-ms", "5000")
    await process.start()
    try:
        yield process
    finally:
        await process.kill()


@pytest_asyncio.fixture
async def worker(
    worker_script: Path, host: Host, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await start_worker(worker_script, host.address, tmp_path)
    try:
        yield process
    finally:
        await stop_process(process)


@pytest_asyncio.fixture
async def peer(host: Host, worker: asyncio.subprocess.Process) -> AsyncIterator[Peer]:
    client = Peer(host.address)
    await client.open(topics=("probe.pings", "conformance.receipts"))
    try:
        yield client
    finally:
        await client.close()


# -- over the reference host ----------------------------------------------------------------


@pytest.mark.requirement("AWP-CNF-002", "AWP-SUB-011", "AWP-SUB-003")
async def test_registers_the_conformance_type_and_subscriptions(peer: Peer) -> None:
    listed = await peer.unary(
        "GetSubscriptions", pb.GetSubscriptionsRequest(), pb.GetSubscriptionsResponse
    )
    rules = set()
    for sub in listed.subscriptions:
        kind = sub.WhichOneof("subscription")
        rule = (
            sub.type_subscription if kind == "type_subscription" else sub.type_prefix_subscription
        )
        if rule.agent_type == "conformance":
            assert uuid.UUID(sub.id)
            topic = (
                sub.type_subscription.topic_type or sub.type_prefix_subscription.topic_type_prefix
            )
            rules.add((kind, topic))
    assert rules == {
        ("type_subscription", "conformance.broadcast"),
        ("type_prefix_subscription", "conformance.prefix."),
        ("type_prefix_subscription", "conformance:"),
    }


@pytest.mark.requirement("AWP-CNF-003", "AWP-CNF-004", "AWP-RPC-006", "AWP-RPC-020")
async def test_json_and_protobuf_pings_get_pongs(peer: Peer) -> None:
    response = await peer.call(json_payload("Ping", {"text": "hello", "seq": 3}), key="c1")
    assert (response.error, response.error_code) == ("", pb.ERROR_CODE_UNSPECIFIED)
    assert response.payload.data_type == "Pong"
    assert response.payload.data_content_type == JSON_TYPE
    assert json.loads(response.payload.data) == {"text": "hello", "seq": 3, "agent_key": "c1"}

    response = await peer.call(proto_payload(cp.Ping(text="p", seq=4)), key="c2")
    assert response.error == ""
    assert unpack_payload(response.payload, cp.Pong) == cp.Pong(text="p", seq=4, agent_key="c2")


@pytest.mark.requirement("AWP-CNF-006", "AWP-RPC-021")
async def test_other_payloads_are_unsupported(peer: Peer) -> None:
    for payload in (
        json_payload("Question", {"q": "?"}),
        proto_payload(pb.Notice(message="not a conformance message")),
        proto_payload(cp.EventReceipt(agent_key="x")),
        pb.Payload(data_type="Ping", data_content_type="text/plain", data=b"x"),
    ):
        response = await peer.call(payload)
        assert response.error_code == pb.ERROR_CODE_UNSUPPORTED_MESSAGE, payload
        assert response.error


@pytest.mark.requirement("AWP-CNF-010", "AWP-PUB-001", "AWP-PUB-020", "AWP-PUB-021")
@pytest.mark.parametrize("encoding", [cp.ENCODING_JSON, cp.ENCODING_PROTOBUF])
async def test_publish_command_sends_events_in_order(peer: Peer, encoding: cp.Encoding) -> None:
    action = cp.PublishAction(
        topic_type="probe.pings",
        topic_source="s",
        count=20,
        first_seq=10,
        text="x",
        encoding=encoding,
    )
    result = await peer.result(command("pub", publish=action), key="k1")
    assert result == cp.CommandResult(case_id="pub", published=20)
    ids = set()
    for seq in range(10, 30):
        event = await peer.next_event()
        assert uuid.UUID(event.id)
        assert event.id not in ids
        ids.add(event.id)
        assert (event.type, event.source, event.spec_version) == ("probe.pings", "s", "1.0")
        assert attr(event, "agagentsendertype") == "conformance"
        assert attr(event, "agagentsenderkey") == "k1"
        assert attr(event, "agmsgkind") == "publish"
        assert all(name.isalnum() and name.islower() for name in event.attributes)
        if encoding == cp.ENCODING_JSON:
            assert attr(event, "datacontenttype") == JSON_TYPE
            assert attr(event, "dataschema") == "Ping"
            assert event.WhichOneof("data") == "binary_data"
            assert json.loads(event.binary_data) == {"text": "x", "seq": seq}
        else:
            assert attr(event, "datacontenttype") == PROTOBUF
            assert attr(event, "dataschema") == "agentworker.conformance.v1.Ping"
            assert event.WhichOneof("data") == "proto_data"
            assert (
                event.proto_data.type_url == "type.googleapis.com/agentworker.conformance.v1.Ping"
            )
            ping = cp.Ping()
            assert event.proto_data.Unpack(ping)
            assert ping == cp.Ping(text="x", seq=seq)


@pytest.mark.requirement("AWP-CNF-012", "AWP-RPC-021")
async def test_fail_command_is_a_handler_failure(peer: Peer) -> None:
    response = await peer.call(command("f", fail=cp.FailAction(message="requested failure")))
    assert response.error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert "requested failure" in response.error


@pytest.mark.requirement("AWP-CNF-011", "AWP-RPC-022")
async def test_call_command_reports_unknown_target_and_pongs(peer: Peer) -> None:
    call = cp.CallAction(
        target=pb.AgentId(type="nobody", key="k"),
        ping=cp.Ping(text="c", seq=1),
        encoding=cp.ENCODING_JSON,
        timeout_ms=2000,
    )
    result = await peer.result(command("unknown", call=call))
    assert result.call.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
    assert result.call.error_message
    assert not result.call.HasField("pong")

    for encoding in (cp.ENCODING_JSON, cp.ENCODING_PROTOBUF):
        call = cp.CallAction(
            target=pb.AgentId(type="conformance", key="k2"),
            ping=cp.Ping(text="c", seq=5),
            encoding=encoding,
            timeout_ms=5000,
        )
        result = await peer.result(command("round-trip", call=call))
        assert result.call.error_code == pb.ERROR_CODE_UNSPECIFIED, result
        assert result.call.pong == cp.Pong(text="c", seq=5, agent_key="k2")
        assert result.call.encoding == encoding


@pytest.mark.requirement("AWP-CNF-005", "AWP-SUB-011", "AWP-SUB-012", "AWP-PUB-022")
async def test_ping_events_get_receipts(peer: Peer) -> None:
    cases = [
        ("conformance.broadcast", "b1"),
        ("conformance.prefix.x", "b2"),
        ("conformance:d", "b3"),
    ]
    for seq, (topic, source) in enumerate(cases):
        event = ping_event(topic, source, "evt", seq)
        await peer.publish(event)
        receipt_event = await peer.next_event()
        assert (receipt_event.type, receipt_event.source) == ("conformance.receipts", source)
        assert attr(receipt_event, "agagentsendertype") == "conformance"
        assert attr(receipt_event, "agagentsenderkey") == source
        receipt = cp.EventReceipt()
        assert receipt_event.proto_data.Unpack(receipt)
        assert receipt == cp.EventReceipt(
            agent_key=source,
            topic_type=topic,
            topic_source=source,
            text="evt",
            seq=seq,
            encoding=cp.ENCODING_JSON,
            sender=pb.AgentId(type="probe", key="p"),
            event_id=event.id,
        )


@pytest.mark.requirement("AWP-CNF-013", "AWP-CNF-014", "AWP-CNF-015")
async def test_stall_deadline_remember_and_recall(peer: Peer) -> None:
    stalled = await peer.result(command("s", stall=cp.StallAction(duration_ms=50)))
    assert stalled.stalled_ms == 50
    late = await peer.call(
        command("late", deadline_ms=200, stall=cp.StallAction(duration_ms=20_000))
    )
    assert late.error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert "deadline" in late.error
    remembered = await peer.result(command("r", remember=cp.RememberAction(value="v1")), key="m1")
    assert remembered.remembered == "v1"
    recalled = await peer.result(command("q", recall=cp.RecallAction()), key="m1")
    assert recalled.recalled == "v1"
    other = await peer.result(command("q", recall=cp.RecallAction()), key="m2")
    assert other.recalled == ""


@pytest.mark.requirement("AWP-CTL-001", "AWP-CTL-003", "AWP-CNF-014")
async def test_state_is_saved_and_loaded_over_the_control_channel(peer: Peer) -> None:
    await peer.result(command("r", remember=cp.RememberAction(value="kept")), key="s1")
    control = peer.channel.stream_stream(
        _path("OpenControlChannel"),
        request_serializer=pb.OpenControlChannelRequest.SerializeToString,
        response_deserializer=pb.OpenControlChannelResponse.FromString,
    )(None, metadata=peer.metadata)

    async def control_call(rpc_id: str, agent: str, message: Message) -> any_pb2.Any:
        envelope = any_pb2.Any()
        envelope.Pack(message)
        await control.write(
            pb.OpenControlChannelRequest(
                rpc_id=rpc_id,
                destination=f"agentid=conformance/{agent}",
                respond_to=f"clientid={peer.client_id}",
                rpc_message=envelope,
            )
        )
        async with asyncio.timeout(WAIT_S):
            reply = await control.read()
        assert isinstance(reply, pb.OpenControlChannelResponse)
        assert reply.rpc_id == rpc_id
        return reply.rpc_message

    saved = pb.SaveStateResponse()
    envelope = await control_call(
        "1", "s1", pb.SaveStateRequest(agent_id=pb.AgentId(type="conformance", key="s1"))
    )
    assert envelope.Unpack(saved)
    assert not saved.HasField("error"), saved
    assert "kept" in saved.state
    loaded = pb.LoadStateResponse()
    request = pb.LoadStateRequest(
        agent_id=pb.AgentId(type="conformance", key="s2"), state=saved.state
    )
    assert (await control_call("2", "s2", request)).Unpack(loaded)
    assert not loaded.HasField("error"), loaded
    recalled = await peer.result(command("q", recall=cp.RecallAction()), key="s2")
    assert recalled.recalled == "kept"
    control.cancel()


@pytest.mark.requirement("AWP-CONN-017")
async def test_sigterm_drains_and_exits_zero(
    peer: Peer, worker: asyncio.subprocess.Process
) -> None:
    running = asyncio.create_task(peer.call(command("s", stall=cp.StallAction(duration_ms=700))))
    await asyncio.sleep(0.3)  # the stall is running when the signal arrives
    worker.send_signal(signal.SIGTERM)
    response = await running
    assert response.error == "", response
    assert unpack_payload(response.payload, cp.CommandResult).stalled_ms == 700
    async with asyncio.timeout(WAIT_S):
        assert await worker.wait() == 0


@pytest.mark.requirement("AWP-CONN-020", "AWP-CONN-021", "AWP-CONN-006")
async def test_reconnects_and_registers_again_after_the_host_restarts(
    worker_script: Path, tmp_path: Path
) -> None:
    host = Host(tmp_path, _free_port())
    await host.start()
    process = await start_worker(worker_script, host.address, tmp_path)
    try:
        await host.kill()
        await asyncio.sleep(0.5)
        await host.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            client = Peer(host.address)
            try:
                await client.open()
                response = await client.call(json_payload("Ping", {"text": "again", "seq": 1}))
            finally:
                await client.close()
            if response.error_code != pb.ERROR_CODE_UNKNOWN_TARGET or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert response.error == "", response
        assert json.loads(response.payload.data)["text"] == "again"
        assert process.returncode is None
    finally:
        await stop_process(process)
        await host.kill()


# -- against a fake host: frames the reference host would not send ------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "tracestate": "vendor=1"}


class FakeHost:
    """Plays the host for one worker: records its calls and sends the frames a test chooses.

    Frames to send are queued as bytes, so a test can send a frame with an unknown case."""

    def __init__(self, *, welcome: bool = True) -> None:
        self.welcome = welcome
        self.control_outbound: asyncio.Queue[pb.OpenControlChannelResponse] = asyncio.Queue()
        self.control_inbound: asyncio.Queue[pb.OpenControlChannelRequest] = asyncio.Queue()
        self.outbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.inbound: asyncio.Queue[pb.OpenChannelRequest] = asyncio.Queue()
        self.calls: list[tuple[str, dict[str, str | bytes]]] = []
        self.hellos: list[pb.ChannelHello] = []
        self.subscriptions: list[pb.Subscription] = []
        self.registrations: list[str] = []
        self.refuse_next_channel = False
        self.half_closed = asyncio.Event()
        self.server = grpc.aio.server()
        unary = grpc.unary_unary_rpc_method_handler
        handlers = {
            "OpenChannel": grpc.stream_stream_rpc_method_handler(
                self._open_channel,
                request_deserializer=pb.OpenChannelRequest.FromString,
                response_serializer=bytes,
            ),
            "OpenControlChannel": grpc.stream_stream_rpc_method_handler(
                self._open_control,
                request_deserializer=pb.OpenControlChannelRequest.FromString,
                response_serializer=pb.OpenControlChannelResponse.SerializeToString,
            ),
            "RegisterAgent": unary(
                self._register,
                request_deserializer=pb.RegisterAgentRequest.FromString,
                response_serializer=pb.RegisterAgentResponse.SerializeToString,
            ),
            "AddSubscription": unary(
                self._subscribe,
                request_deserializer=pb.AddSubscriptionRequest.FromString,
                response_serializer=pb.AddSubscriptionResponse.SerializeToString,
            ),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    def _record(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, Any]:
        metadata = dict(context.invocation_metadata() or ())
        self.calls.append((method, metadata))
        return metadata

    async def _open_channel(
        self,
        requests: AsyncIterator[pb.OpenChannelRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[bytes]:
        metadata = self._record("OpenChannel", context)
        if self.refuse_next_channel:
            self.refuse_next_channel = False
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "client-id has a channel")
        self.hellos.append(pb.ChannelHello.FromString(metadata[HELLO_KEY]))
        if self.welcome:
            welcome = pb.ChannelWelcome(
                protocol_version=1,
                capabilities=[pb.CAPABILITY_BATCHING, pb.CAPABILITY_TRACE_CONTEXT],
                default_rpc_timeout_ms=5000,
                max_batch_messages=16,
                max_message_bytes=16 * 1024 * 1024,
            )
            await context.send_initial_metadata(((WELCOME_KEY, welcome.SerializeToString()),))

        async def pump() -> None:
            async for frame in requests:
                for item in frame.batch.messages if frame.HasField("batch") else [frame]:
                    self.inbound.put_nowait(item)
            self.half_closed.set()

        reader = asyncio.create_task(pump())
        try:
            while (frame := await self.outbound.get()) is not None:
                yield frame
        finally:
            reader.cancel()

    async def _open_control(
        self,
        requests: AsyncIterator[pb.OpenControlChannelRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.OpenControlChannelResponse]:
        self._record("OpenControlChannel", context)

        async def pump() -> None:
            async for frame in requests:
                self.control_inbound.put_nowait(frame)

        reader = asyncio.create_task(pump())
        try:
            while True:
                yield await self.control_outbound.get()
        finally:
            reader.cancel()

    async def _register(
        self, request: pb.RegisterAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterAgentResponse:
        self._record("RegisterAgent", context)
        self.registrations.append(request.type)
        return pb.RegisterAgentResponse()

    async def _subscribe(
        self, request: pb.AddSubscriptionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AddSubscriptionResponse:
        self._record("AddSubscription", context)
        self.subscriptions.append(request.subscription)
        return pb.AddSubscriptionResponse()

    def send(self, *frames: pb.OpenChannelResponse | bytes) -> None:
        for frame in frames:
            self.outbound.put_nowait(
                frame if isinstance(frame, bytes) else frame.SerializeToString()
            )

    async def receive(self, count: int) -> list[pb.OpenChannelRequest]:
        async with asyncio.timeout(WAIT_S):
            return [await self.inbound.get() for _ in range(count)]


def request_frame(
    request_id: str, payload: pb.Payload, key: str = "k", metadata: dict[str, str] | None = None
) -> pb.OpenChannelResponse:
    target = pb.AgentId(type="conformance", key=key)
    request = pb.RpcRequest(
        request_id=request_id,
        target=target,
        payload=payload,
        timeout_ms=9000,
        metadata=metadata or {},
    )
    return pb.OpenChannelResponse(request=request)


def batch(*frames: pb.OpenChannelResponse) -> pb.OpenChannelResponse:
    return pb.OpenChannelResponse(batch=pb.OpenChannelResponse.Batch(messages=frames))


def responses_by_id(frames: list[pb.OpenChannelRequest]) -> dict[str, pb.RpcResponse]:
    return {f.response.request_id: f.response for f in frames if f.HasField("response")}


@pytest_asyncio.fixture
async def fake_host(request: pytest.FixtureRequest) -> AsyncIterator[FakeHost]:
    host = FakeHost(welcome=getattr(request, "param", True))
    await host.server.start()
    try:
        yield host
    finally:
        host.outbound.put_nowait(None)
        await host.server.stop(grace=None)


@pytest_asyncio.fixture
async def fake_worker(
    worker_script: Path, fake_host: FakeHost, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await start_worker(
        worker_script, fake_host.address, tmp_path, AGENTWORKER_CLIENT_ID="ts-under-test"
    )
    try:
        yield process
    finally:
        await stop_process(process)


@pytest.mark.requirement("AWP-VER-010", "AWP-VER-016", "AWP-CONN-002", "AWP-CONN-007")
async def test_handshake_and_client_id_on_every_call(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    (hello,) = fake_host.hellos
    assert hello.protocol_version == 1
    assert hello.implementation
    assert set(hello.capabilities) == {
        pb.CAPABILITY_BATCHING,
        pb.CAPABILITY_STATE,
        pb.CAPABILITY_RECONNECT,
        pb.CAPABILITY_TRACE_CONTEXT,
    }
    methods = [method for method, _ in fake_host.calls]
    assert methods[0] == "OpenChannel"
    assert methods.count("RegisterAgent") == 1
    assert methods.count("AddSubscription") == 3
    assert "OpenControlChannel" not in methods  # CAPABILITY_STATE is not in force
    assert {metadata.get("client-id") for _, metadata in fake_host.calls} == {"ts-under-test"}
    assert fake_host.registrations == ["conformance"]


@pytest.mark.requirement("AWP-BAT-003", "AWP-CONN-013", "AWP-ERR-011", "AWP-CONN-011")
async def test_batches_unknown_frames_and_notices(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    ping = json_payload("Ping", {"text": "b", "seq": 0})
    unknown_case = b"\x7a\x02\x08\x01"  # field 15, a case this version does not know
    notice = pb.OpenChannelResponse(
        notice=pb.Notice(code=pb.ERROR_CODE_INVALID_REQUEST, message="just so you know")
    )
    fake_host.send(
        batch(request_frame("b1", ping), request_frame("b2", proto_payload(cp.Ping(seq=2)))),
        unknown_case,
        notice,
        batch(
            request_frame("b3", json_payload("Ping", {"text": "b", "seq": 3})),
            pb.OpenChannelResponse(cloud_event=ping_event("conformance.broadcast", "e1", "t", 9)),
        ),
        request_frame("b4", json_payload("Ping", {"text": "b", "seq": 4}), key="other"),
    )
    frames = await fake_host.receive(5)
    answers = responses_by_id(frames)
    assert sorted(answers) == ["b1", "b2", "b3", "b4"]
    assert json.loads(answers["b1"].payload.data) == {"text": "b", "seq": 0, "agent_key": "k"}
    pong = unpack_payload(answers["b2"].payload, cp.Pong)
    assert pong == cp.Pong(seq=2, agent_key="k")
    assert json.loads(answers["b3"].payload.data)["seq"] == 3
    assert json.loads(answers["b4"].payload.data)["agent_key"] == "other"
    (event,) = [f.cloud_event for f in frames if f.HasField("cloud_event")]
    receipt = cp.EventReceipt()
    assert event.proto_data.Unpack(receipt)
    assert (receipt.agent_key, receipt.seq) == ("e1", 9)
    # Requests answered in the order they arrived.
    order = [f.response.request_id for f in frames if f.HasField("response")]
    assert order == ["b1", "b2", "b3", "b4"]


@pytest.mark.requirement(
    "AWP-RPC-001",
    "AWP-RPC-007",
    "AWP-RPC-008",
    "AWP-RPC-012",
    "AWP-RPC-023",
    "AWP-ERR-003",
    "AWP-OBS-004",
)
async def test_outbound_calls_responses_in_any_order_and_local_deadline(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    def call(key: str, timeout_ms: int) -> pb.Payload:
        action = cp.CallAction(
            target=pb.AgentId(type="t", key=key),
            ping=cp.Ping(text=key, seq=1),
            encoding=cp.ENCODING_JSON,
            timeout_ms=timeout_ms,
        )
        return command(f"call-{key}", call=action)

    loop = asyncio.get_running_loop()
    started = loop.time()
    # One caller agent per command: one agent handles one message at a time (AWP-CONN-040).
    fake_host.send(
        request_frame("c1", call("a", 5000), key="x1", metadata=TRACE),
        request_frame("c2", call("b", 5000), key="x2"),
        request_frame("c3", call("c", 300), key="y"),
        request_frame("c4", call("d", 5000), key="x4"),
        request_frame("c5", call("e", 5000), key="x5"),
    )
    sent = {f.request.target.key: f.request for f in await fake_host.receive(5)}
    assert sorted(sent) == ["a", "b", "c", "d", "e"]
    assert len({r.request_id for r in sent.values()}) == 5
    assert all(r.request_id for r in sent.values())
    assert [sent[k].timeout_ms for k in "abcd"] == [5000, 5000, 300, 5000]
    assert sent["a"].source == pb.AgentId(type="conformance", key="x1")
    assert sent["a"].payload.data_type == "Ping"
    # The received trace context is the parent of the handler's call (AWP-OBS-004).
    _, trace_id, span_id, _ = sent["a"].metadata["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert span_id != TRACE["traceparent"].split("-")[2]
    assert sent["a"].metadata["tracestate"] == "vendor=1"
    assert "traceparent" not in sent["b"].metadata

    def answer(key: str, **fields: Any) -> pb.OpenChannelResponse:
        return pb.OpenChannelResponse(
            response=pb.RpcResponse(request_id=sent[key].request_id, **fields)
        )

    pong = json_payload("Pong", {"text": "a", "seq": 1, "agent_key": "a"})
    fake_host.send(
        pb.OpenChannelResponse(response=pb.RpcResponse(request_id="no-such-request")),
        answer("d", error="from the future", error_code=42),
        answer("e"),  # neither payload nor error (AWP-RPC-023)
        answer("b", error="boom"),
        answer("a", payload=pong),
    )
    answers = responses_by_id(await fake_host.receive(5))
    outcomes = {
        rid: unpack_payload(response.payload, cp.CommandResult).call
        for rid, response in answers.items()
    }
    assert outcomes["c1"].pong == cp.Pong(text="a", seq=1, agent_key="a")
    assert outcomes["c1"].encoding == cp.ENCODING_JSON
    assert outcomes["c2"].error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert "boom" in outcomes["c2"].error_message
    assert outcomes["c4"].error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert outcomes["c5"].error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert not outcomes["c5"].HasField("pong")
    assert outcomes["c3"].error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED
    assert 1.2 <= loop.time() - started < 10  # the call's 300 ms plus the 1 s margin


@pytest.mark.requirement("AWP-CONN-020", "AWP-CONN-021")
async def test_reconnect_retries_already_exists_and_keeps_subscription_ids(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    first = [sub.SerializeToString() for sub in fake_host.subscriptions]
    fake_host.refuse_next_channel = True
    fake_host.outbound.put_nowait(None)  # ends the data channel
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while len(fake_host.subscriptions) < 2 * len(first):
        assert loop.time() < deadline, fake_host.calls
        await asyncio.sleep(0.05)
    again = [sub.SerializeToString() for sub in fake_host.subscriptions[len(first) :]]
    assert sorted(again) == sorted(first)
    assert fake_host.registrations == ["conformance", "conformance"]
    methods = [method for method, _ in fake_host.calls]
    assert methods.count("OpenChannel") == 3  # first, refused with ALREADY_EXISTS, accepted
    assert {metadata.get("client-id") for _, metadata in fake_host.calls} == {"ts-under-test"}
    fake_host.send(request_frame("after", json_payload("Ping", {"text": "r", "seq": 1})))
    (frame,) = await fake_host.receive(1)
    assert frame.response.request_id == "after"
    assert frame.response.error == ""


# -- TLS, mutual TLS and bearer tokens over the reference host ------------------------------


@pytest_asyncio.fixture
async def secure_host(certs: Path, tmp_path: Path) -> AsyncIterator[Host]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps(
            [
                {"token": "worker-token", "client_id": "ts-secure", "agent_types": ["conformance"]},
                {"token": "peer-token", "client_id": "peer-secure"},
            ]
        )
    )
    host = Host(
        tmp_path,
        _free_port(),
        *("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")),
        *("--client-ca", str(certs / "ca.pem"), "--tokens", str(tokens)),
    )
    await host.start()
    try:
        yield host
    finally:
        await host.kill()


@pytest.mark.requirement("AWP-SEC-001", "AWP-SEC-003", "AWP-SEC-005", "AWP-CNF-001")
async def test_mutual_tls_and_bearer_token(
    worker_script: Path, secure_host: Host, certs: Path, tmp_path: Path
) -> None:
    secure_env = {
        "AGENTWORKER_TLS_CA": str(certs / "ca.pem"),
        "AGENTWORKER_TLS_SERVER_NAME": SERVER_NAME,
        "AGENTWORKER_TLS_CERT": str(certs / "client.pem"),
        "AGENTWORKER_TLS_KEY": str(certs / "client.key"),
        "AGENTWORKER_CLIENT_ID": "ts-secure",
    }
    process = await start_worker(
        worker_script, secure_host.address, tmp_path, **secure_env, AGENTWORKER_TOKEN="worker-token"
    )
    credentials = grpc.ssl_channel_credentials(
        (certs / "ca.pem").read_bytes(),
        (certs / "client.key").read_bytes(),
        (certs / "client.pem").read_bytes(),
    )
    client = Peer(
        secure_host.address,
        credentials,
        options=(("grpc.ssl_target_name_override", SERVER_NAME),),
        token="peer-token",
        client_id="peer-secure",
    )
    try:
        await client.open()
        response = await client.call(json_payload("Ping", {"text": "secure", "seq": 1}))
        assert json.loads(response.payload.data) == {"text": "secure", "seq": 1, "agent_key": "c1"}
    finally:
        await client.close()
        await stop_process(process)

    # A wrong token is refused (UNAUTHENTICATED): the worker reports it and exits non-zero.
    refused = await asyncio.create_subprocess_exec(
        "node",
        str(worker_script),
        env={
            **os.environ,
            **secure_env,
            "AGENTWORKER_HOST_ADDRESS": secure_host.address,
            "AGENTWORKER_TOKEN": "wrong",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT_S):
        out, err = await refused.communicate()
    assert refused.returncode not in (0, None)
    assert b"ready" not in out
    assert b"UNAUTHENTICATED" in err.upper() or b"TOKEN" in err.upper(), err


@pytest.mark.requirement("AWP-VER-015", "AWP-CTL-002", "AWP-CTL-003", "AWP-CTL-005")
@pytest.mark.parametrize("fake_host", [False], indirect=True, ids=["legacy-host"])
async def test_legacy_host_gets_legacy_control_type_urls(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    fake_host.send(request_frame("l1", command("r", remember=cp.RememberAction(value="old"))))
    (frame,) = await fake_host.receive(1)
    assert frame.response.error == "", frame
    assert "OpenControlChannel" in [method for method, _ in fake_host.calls]

    def control(rpc_id: str, name: str, message: Message) -> pb.OpenControlChannelResponse:
        envelope = any_pb2.Any(
            type_url=f"type.googleapis.com/agents.{name}", value=message.SerializeToString()
        )
        return pb.OpenControlChannelResponse(
            rpc_id=rpc_id,
            destination="agentid=conformance/k",
            respond_to="clientid=someone",
            rpc_message=envelope,
        )

    save = pb.SaveStateRequest(agent_id=pb.AgentId(type="conformance", key="k"))
    fake_host.control_outbound.put_nowait(control("s1", "SaveStateRequest", save))
    unknown = pb.SaveStateRequest(agent_id=pb.AgentId(type="nobody", key="k"))
    fake_host.control_outbound.put_nowait(control("s2", "SaveStateRequest", unknown))
    async with asyncio.timeout(WAIT_S):
        replies = [await fake_host.control_inbound.get() for _ in range(2)]
    by_id = {reply.rpc_id: reply for reply in replies}
    assert sorted(by_id) == ["s1", "s2"]
    for reply in replies:
        assert reply.destination == "clientid=someone"
        assert reply.rpc_message.type_url == "type.googleapis.com/agents.SaveStateResponse"
    saved = pb.SaveStateResponse.FromString(by_id["s1"].rpc_message.value)
    assert not saved.HasField("error")
    assert "old" in saved.state
    failed = pb.SaveStateResponse.FromString(by_id["s2"].rpc_message.value)
    assert failed.error
    assert failed.error_code == pb.ERROR_CODE_HANDLER_FAILED


@pytest.mark.requirement("AWP-PUB-022", "AWP-SUB-012", "AWP-PUB-002")
async def test_undecodable_and_own_events_are_skipped(peer: Peer) -> None:
    weird = ping_event("conformance.broadcast", "u1", "x", 1)
    weird.attributes["datacontenttype"].ce_string = "text/weird"
    unknown_proto = ping_event("conformance.broadcast", "u2", "x", 2)
    unknown_proto.proto_data.Pack(pb.Notice(message="not a Ping"))
    unknown_proto.attributes["datacontenttype"].ce_string = PROTOBUF
    not_json = ping_event("conformance.broadcast", "u3", "x", 3)
    not_json.binary_data = b"{not json"
    own = ping_event("conformance.broadcast", "u4", "x", 4)
    own.attributes["agagentsendertype"].ce_string = "conformance"
    own.attributes["agagentsenderkey"].ce_string = "u4"  # the addressed agent is the sender
    upper = ping_event("conformance.broadcast", "u5", "x", 5)
    upper.attributes["datacontenttype"].ce_string = "Application/JSON"
    upper.attributes["someextension"].ce_string = "ignored"
    for event in (weird, unknown_proto, not_json, own, upper):
        await peer.publish(event)
    receipt_event = await peer.next_event()
    receipt = cp.EventReceipt()
    assert receipt_event.proto_data.Unpack(receipt)
    assert (receipt.agent_key, receipt.seq) == ("u5", 5)
    # The worker is still serving.
    response = await peer.call(json_payload("Ping", {"text": "still", "seq": 6}))
    assert json.loads(response.payload.data)["text"] == "still"
    assert peer.events.empty()


@pytest.mark.requirement("AWP-CONN-003")
async def test_large_payloads(host: Host, worker: asyncio.subprocess.Process) -> None:
    size = 5 * 1024 * 1024
    options = (
        ("grpc.max_receive_message_length", 4 * size),
        ("grpc.max_send_message_length", 4 * size),
    )
    client = Peer(host.address, options=options)
    try:
        await client.open()
        text = "x" * size
        response = await client.call(proto_payload(cp.Ping(text=text, seq=1)))
        assert response.error == "", response.error
        assert unpack_payload(response.payload, cp.Pong).text == text
    finally:
        await client.close()


@pytest.mark.requirement("AWP-OBS-004")
async def test_event_trace_context_reaches_the_receipt(peer: Peer) -> None:
    event = ping_event("conformance.broadcast", "t1", "traced", 1)
    value = ce.CloudEvent.CloudEventAttributeValue
    event.attributes["traceparent"].CopyFrom(value(ce_string=TRACE["traceparent"]))
    event.attributes["tracestate"].CopyFrom(value(ce_string=TRACE["tracestate"]))
    await peer.publish(event)
    receipt = await peer.next_event()
    assert receipt.source == "t1"
    _, trace_id, span_id, _ = attr(receipt, "traceparent").split("-")
    assert trace_id == TRACE_ID
    assert span_id != "00f067aa0ba902b7"
    assert attr(receipt, "tracestate") == "vendor=1"


@pytest.mark.requirement("AWP-CONN-017", "AWP-ERR-001")
async def test_sigterm_refuses_new_work_finishes_running_work_and_half_closes(
    fake_host: FakeHost, fake_worker: asyncio.subprocess.Process
) -> None:
    fake_host.send(request_frame("s1", command("s", stall=cp.StallAction(duration_ms=3000))))
    await asyncio.sleep(0.3)
    # Another agent: the stalled one handles nothing else meanwhile (AWP-CONN-040).
    started = json_payload("Ping", {"text": "x", "seq": 0})
    fake_host.send(request_frame("started", started, key="other"))
    (first,) = await fake_host.receive(1)
    assert first.response.request_id == "started"
    fake_worker.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)  # the worker is draining: s1 still runs
    fake_host.send(
        request_frame("late", json_payload("Ping", {"text": "x", "seq": 1}), key="other")
    )
    answers = responses_by_id(await fake_host.receive(2))
    assert answers["late"].error_code == pb.ERROR_CODE_SHUTTING_DOWN
    assert answers["late"].error
    assert answers["s1"].error == "", answers["s1"]
    assert unpack_payload(answers["s1"].payload, cp.CommandResult).stalled_ms == 3000
    async with asyncio.timeout(WAIT_S):
        await fake_host.half_closed.wait()
        assert await fake_worker.wait() == 0
