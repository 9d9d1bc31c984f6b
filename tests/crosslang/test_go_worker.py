"""The Go conformance worker (workers/go) against the reference host, driven over the wire.

The test builds ``workers/go/cmd/conformance-worker`` with the Go toolchain, starts the reference
host and the Go worker as subprocesses, and plays a second worker with a raw client built from
the generated Python stubs only: it calls the Go worker's conformance agents, subscribes to what
they publish and publishes events to them (spec sections 9, 10, 11 and 16).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Final

import grpc
import pytest
import pytest_asyncio
from google.protobuf import any_pb2
from google.protobuf.message import Message

from agentworker.cloudevents.v1 import cloudevents_pb2 as ce
from agentworker.conformance.v1 import contract_pb2 as cpb
from agentworker.v1 import agentworker_pb2 as pb
from agentworker.v1 import agentworker_pb2_grpc as pb_grpc
from tests.crosslang._procs import (
    HARNESS_TYPE,
    SINK_TYPE,
    TIMEOUT_S,
    Host,
    RawWorker,
    _stop,
    attr,
    command_result,
    conformance,
    go_worker_binary,
    json_payload,
    new_key,
    proto_payload,
    start_host,
    start_worker,
    type_sub,
    unpack,
)
from tests.crosslang._procs import WorkerProcess as GoWorker
from tests.pki import SERVER_NAME

PUBLISH_TOPIC: Final = "harness.events"

pytestmark = pytest.mark.requirement(
    "AWP-CNF-001", "AWP-CNF-002", "AWP-CNF-003", "AWP-CNF-004", "AWP-CNF-005", "AWP-CNF-006"
)

Attr = ce.CloudEvent.CloudEventAttributeValue


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("go-worker")


@pytest.fixture(scope="module")
def binary() -> pathlib.Path:
    return go_worker_binary()


@pytest.fixture(scope="module")
def host(logs: pathlib.Path) -> Iterator[Host]:
    started = start_host(logs)
    yield started
    _stop(started.proc)


@pytest.fixture(scope="module")
def go_worker(binary: pathlib.Path, host: Host, logs: pathlib.Path) -> Iterator[GoWorker]:
    worker = start_worker(binary, host.address, logs / "worker.log")
    yield worker
    _stop(worker.proc)


@pytest_asyncio.fixture
async def raw(host: Host, go_worker: GoWorker) -> AsyncIterator[RawWorker]:
    client = RawWorker(host.address)
    await client.open(type_sub(PUBLISH_TOPIC), type_sub("conformance.receipts"))
    yield client
    await client.close()


# -- RPC: Ping, errors (sections 10, 11, 16.2) -------------------------------------------------


@pytest.mark.asyncio
async def test_json_ping_is_answered_with_a_json_pong(raw: RawWorker) -> None:
    key = new_key()
    response = await raw.call(conformance(key), json_payload("Ping", {"text": "hi", "seq": 7}))
    assert response.error == ""
    assert response.payload.data_type == "Pong"
    assert response.payload.data_content_type == "application/json"
    assert json.loads(response.payload.data) == {"text": "hi", "seq": 7, "agent_key": key}


@pytest.mark.asyncio
async def test_protobuf_ping_is_answered_with_a_protobuf_pong(raw: RawWorker) -> None:
    key = new_key()
    response = await raw.call(conformance(key), proto_payload(cpb.Ping(text="hé", seq=-3)))
    assert response.error == ""
    pong = cpb.Pong()
    unpack(response.payload, pong)
    assert pong == cpb.Pong(text="hé", seq=-3, agent_key=key)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-003")
async def test_large_pings_are_answered(raw: RawWorker) -> None:
    key, text = new_key(), "x" * (3 * 1024 * 1024)
    response = await raw.call(conformance(key), json_payload("Ping", {"text": text, "seq": 1}))
    assert json.loads(response.payload.data) == {"text": text, "seq": 1, "agent_key": key}
    response = await raw.call(conformance(key), proto_payload(cpb.Ping(text=text, seq=2)))
    pong = cpb.Pong()
    unpack(response.payload, pong)
    assert (len(pong.text), pong.seq) == (len(text), 2)


@pytest.mark.asyncio
async def test_concurrent_calls_are_each_answered_once(raw: RawWorker) -> None:
    keys = [new_key() for _ in range(5)]
    calls = [
        raw.call(conformance(keys[i % 5]), proto_payload(cpb.Ping(text="c", seq=i)))
        for i in range(100)
    ]
    responses = await asyncio.gather(*calls)
    for i, response in enumerate(responses):
        pong = cpb.Pong()
        unpack(response.payload, pong)
        assert (pong.seq, pong.agent_key) == (i, keys[i % 5])


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-021")
async def test_unsupported_payload_is_answered_with_unsupported_message(raw: RawWorker) -> None:
    for payload in (
        json_payload("Greeting", {"text": "hi"}),
        proto_payload(cpb.RecallAction()),
        pb.Payload(data_type="Ping", data_content_type="text/plain", data=b"ping"),
        pb.Payload(data_type="Ping", data_content_type="application/json", data=b"{not json"),
    ):
        response = await raw.call(conformance(new_key()), payload)
        assert response.error_code == pb.ERROR_CODE_UNSUPPORTED_MESSAGE, payload
        assert response.error != ""
        assert not response.HasField("payload")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-012", "AWP-RPC-021")
async def test_failing_command_is_answered_with_handler_failed(raw: RawWorker) -> None:
    command = cpb.Command(case_id="fail", fail=cpb.FailAction(message="boom-42"))
    response = await raw.command(new_key(), command)
    assert response.error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert "boom-42" in response.error


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-013", "AWP-CNF-015")
async def test_stall_answers_after_its_duration_and_never_past_its_deadline(
    raw: RawWorker,
) -> None:
    key = new_key()
    loop = asyncio.get_running_loop()
    started = loop.time()
    stall = cpb.Command(case_id="stall", stall=cpb.StallAction(duration_ms=200))
    assert command_result(await raw.command(key, stall)).stalled_ms == 200
    assert loop.time() - started >= 0.2

    started = loop.time()
    late = cpb.Command(case_id="late", deadline_ms=300, stall=cpb.StallAction(duration_ms=5000))
    response = await raw.command(key, late)
    assert loop.time() - started < 3.0
    assert response.error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert "deadline" in response.error


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-014")
async def test_remember_and_recall_keep_state_per_agent(raw: RawWorker) -> None:
    key, other = new_key(), new_key()
    remember = cpb.Command(case_id="r", remember=cpb.RememberAction(value="v-1"))
    assert command_result(await raw.command(key, remember)).remembered == "v-1"
    recall = cpb.Command(case_id="q", recall=cpb.RecallAction())
    assert command_result(await raw.command(key, recall)).recalled == "v-1"
    assert command_result(await raw.command(other, recall)).recalled == ""


# -- Command.call: the Go worker as a caller (sections 10.3, 11) -------------------------------


async def _call_outcome(raw: RawWorker, action: cpb.CallAction) -> cpb.CallOutcome:
    command = cpb.Command(case_id="call", deadline_ms=10_000, call=action)
    result = command_result(await raw.command(new_key(), command))
    assert result.WhichOneof("outcome") == "call"
    return result.call


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-011")
@pytest.mark.parametrize("encoding", [cpb.ENCODING_JSON, cpb.ENCODING_PROTOBUF])
async def test_call_to_another_conformance_agent_returns_its_pong(
    raw: RawWorker, encoding: cpb.Encoding
) -> None:
    other = new_key()
    action = cpb.CallAction(
        target=conformance(other),
        ping=cpb.Ping(text="t", seq=9),
        encoding=encoding,
        timeout_ms=5000,
    )
    outcome = await _call_outcome(raw, action)
    assert outcome.error_code == pb.ERROR_CODE_UNSPECIFIED, outcome.error_message
    assert outcome.pong == cpb.Pong(text="t", seq=9, agent_key=other)
    assert outcome.encoding == encoding


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-011", "AWP-RPC-022")
async def test_call_to_an_unknown_target_reports_unknown_target(raw: RawWorker) -> None:
    action = cpb.CallAction(
        target=pb.AgentId(type="nobody-serves-this", key="k"),
        ping=cpb.Ping(text="t", seq=1),
        encoding=cpb.ENCODING_JSON,
        timeout_ms=5000,
    )
    outcome = await _call_outcome(raw, action)
    assert outcome.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
    assert outcome.error_message != ""
    assert not outcome.HasField("pong")


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-001", "AWP-RPC-012", "AWP-RPC-022")
async def test_call_to_a_silent_target_reports_deadline_exceeded(raw: RawWorker) -> None:
    key = new_key()
    action = cpb.CallAction(
        target=pb.AgentId(type=SINK_TYPE, key=key),
        ping=cpb.Ping(text="t", seq=1),
        encoding=cpb.ENCODING_PROTOBUF,
        timeout_ms=400,
    )
    outcome, request = await asyncio.gather(
        _call_outcome(raw, action), asyncio.wait_for(raw.requests.get(), TIMEOUT_S)
    )
    assert request.request_id != ""
    assert 0 < request.timeout_ms <= 400
    assert request.source == conformance(request.source.key)
    assert request.payload.data_type == "agentworker.conformance.v1.Ping"
    assert outcome.error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-RPC-007", "AWP-ERR-003", "AWP-RPC-023")
@pytest.mark.parametrize("error", ["legacy failure", ""])
async def test_call_reports_a_legacy_error_as_handler_failed(raw: RawWorker, error: str) -> None:
    key = new_key()
    action = cpb.CallAction(
        target=pb.AgentId(type=SINK_TYPE, key=key),
        ping=cpb.Ping(text="t", seq=1),
        encoding=cpb.ENCODING_JSON,
        timeout_ms=5000,
    )

    async def answer() -> None:
        request = await asyncio.wait_for(raw.requests.get(), TIMEOUT_S)
        # A legacy peer's error: text but no code, or (AWP-RPC-023) nothing at all.
        legacy = pb.RpcResponse(request_id=request.request_id, error=error)
        await raw.answer(legacy)

    outcome, _ = await asyncio.gather(_call_outcome(raw, action), answer())
    assert outcome.error_code == pb.ERROR_CODE_HANDLER_FAILED
    assert error in outcome.error_message
    assert outcome.error_message != ""


# -- publish and events (sections 8, 9, 16.2) --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-010", "AWP-PUB-001", "AWP-PUB-021")
@pytest.mark.parametrize("encoding", [cpb.ENCODING_JSON, cpb.ENCODING_PROTOBUF])
async def test_publish_command_sends_events_in_order_with_the_envelope(
    raw: RawWorker, encoding: cpb.Encoding
) -> None:
    key, source, count = new_key(), new_key(), 200
    publish = cpb.PublishAction(
        topic_type=PUBLISH_TOPIC,
        topic_source=source,
        count=count,
        first_seq=5,
        text="p",
        encoding=encoding,
    )
    result = command_result(await raw.command(key, cpb.Command(case_id="pub", publish=publish)))
    assert result.published == count
    ids = set()
    for seq in range(5, 5 + count):
        event = await raw.next_event(lambda e: e.source == source)
        assert event.type == PUBLISH_TOPIC
        assert event.spec_version == "1.0"
        assert uuid.UUID(event.id).version == 4
        ids.add(event.id)
        assert attr(event, "agmsgkind") == "publish"
        assert attr(event, "agagentsendertype") == "conformance"
        assert attr(event, "agagentsenderkey") == key
        if encoding == cpb.ENCODING_JSON:
            assert attr(event, "datacontenttype") == "application/json"
            assert attr(event, "dataschema") == "Ping"
            assert event.WhichOneof("data") == "binary_data"
            assert json.loads(event.binary_data) == {"text": "p", "seq": seq}
        else:
            assert attr(event, "datacontenttype") == "application/x-protobuf"
            assert attr(event, "dataschema") == "agentworker.conformance.v1.Ping"
            assert event.WhichOneof("data") == "proto_data"
            ping = cpb.Ping()
            assert event.proto_data.Unpack(ping)
            assert ping == cpb.Ping(text="p", seq=seq)
        assert all(name.isalnum() and name.islower() for name in event.attributes)
    assert len(ids) == count


def _ping_event(
    topic_type: str, source: str, encoding: cpb.Encoding, seq: int, sender: pb.AgentId | None
) -> ce.CloudEvent:
    event = ce.CloudEvent(id=str(uuid.uuid4()), source=source, spec_version="1.0", type=topic_type)
    event.attributes["agmsgkind"].ce_string = "publish"
    if sender is not None:
        event.attributes["agagentsendertype"].ce_string = sender.type
        event.attributes["agagentsenderkey"].ce_string = sender.key
    if encoding == cpb.ENCODING_JSON:
        event.attributes["datacontenttype"].ce_string = "application/json"
        event.attributes["dataschema"].ce_string = "Ping"
        event.binary_data = json.dumps({"text": "ev", "seq": seq}).encode()
    else:
        event.attributes["datacontenttype"].ce_string = "application/x-protobuf"
        event.attributes["dataschema"].ce_string = "agentworker.conformance.v1.Ping"
        event.proto_data.Pack(cpb.Ping(text="ev", seq=seq))
    return event


def _receipt(event: ce.CloudEvent) -> cpb.EventReceipt:
    assert event.type == "conformance.receipts"
    assert attr(event, "dataschema") == "agentworker.conformance.v1.EventReceipt"
    receipt = cpb.EventReceipt()
    assert event.proto_data.Unpack(receipt)
    return receipt


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CNF-005", "AWP-SUB-010", "AWP-SUB-011", "AWP-PUB-022")
@pytest.mark.parametrize(
    ("topic_type", "encoding"),
    [
        ("conformance.broadcast", cpb.ENCODING_JSON),
        ("conformance.broadcast", cpb.ENCODING_PROTOBUF),
        ("conformance.prefix.anything", cpb.ENCODING_JSON),
        ("conformance:direct", cpb.ENCODING_PROTOBUF),
    ],
)
async def test_ping_event_is_acknowledged_with_a_receipt(
    raw: RawWorker, topic_type: str, encoding: cpb.Encoding
) -> None:
    key = new_key()
    sender = pb.AgentId(type=HARNESS_TYPE, key="me")
    event = _ping_event(topic_type, key, encoding, 11, sender)
    await raw.publish(event)
    published = await raw.next_event(lambda e: e.type == "conformance.receipts" and e.source == key)
    assert attr(published, "agagentsendertype") == "conformance"
    assert attr(published, "agagentsenderkey") == key
    assert _receipt(published) == cpb.EventReceipt(
        agent_key=key,
        topic_type=topic_type,
        topic_source=key,
        text="ev",
        seq=11,
        encoding=encoding,
        sender=sender,
        event_id=event.id,
    )


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-011", "AWP-CNF-005")
async def test_receipts_keep_the_order_of_the_events(raw: RawWorker) -> None:
    key = new_key()
    for seq in range(50):
        await raw.publish(_ping_event("conformance.broadcast", key, cpb.ENCODING_JSON, seq, None))
    seqs = []
    for _ in range(50):
        event = await raw.next_event(lambda e: e.source == key)
        receipt = _receipt(event)
        assert not receipt.HasField("sender")
        seqs.append(receipt.seq)
    assert seqs == list(range(50))


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SUB-012", "AWP-PUB-022")
async def test_undecodable_and_self_sent_events_are_not_delivered(raw: RawWorker) -> None:
    key = new_key()
    bad = _ping_event("conformance.broadcast", key, cpb.ENCODING_JSON, 1, None)
    bad.binary_data = b"{broken"
    await raw.publish(bad)
    own = _ping_event("conformance.broadcast", key, cpb.ENCODING_JSON, 2, conformance(key))
    await raw.publish(own)
    good = _ping_event("conformance.broadcast", key, cpb.ENCODING_JSON, 3, None)
    await raw.publish(good)
    event = await raw.next_event(lambda e: e.source == key)
    assert _receipt(event).seq == 3
    # The worker is still serving.
    response = await raw.call(conformance(key), json_payload("Ping", {"text": "x", "seq": 1}))
    assert response.error == ""


# -- control channel (section 13) --------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-001", "AWP-CNF-014")
async def test_saved_state_loads_into_another_agent(raw: RawWorker, host: Host) -> None:
    source, target = new_key(), new_key()
    remember = cpb.Command(case_id="r", remember=cpb.RememberAction(value="kept"))
    command_result(await raw.command(source, remember))
    control_out: asyncio.Queue[pb.OpenControlChannelRequest | None] = asyncio.Queue()

    async def frames() -> AsyncIterator[pb.OpenControlChannelRequest]:
        while (frame := await control_out.get()) is not None:
            yield frame

    control = raw.stub.OpenControlChannel(frames(), metadata=raw.metadata)
    replies = control.__aiter__()

    async def ask(rpc_id: str, agent: str, message: Message) -> any_pb2.Any:
        envelope = any_pb2.Any()
        envelope.Pack(message)
        await control_out.put(
            pb.OpenControlChannelRequest(
                rpc_id=rpc_id,
                destination=f"agentid=conformance/{agent}",
                respond_to=f"clientid={raw.client_id}",
                rpc_message=envelope,
            )
        )
        reply: pb.OpenControlChannelResponse = await asyncio.wait_for(
            replies.__anext__(), TIMEOUT_S
        )
        assert reply.rpc_id == rpc_id
        return reply.rpc_message

    try:
        saved = pb.SaveStateResponse()
        agent_id = conformance(source)
        assert (await ask("1", source, pb.SaveStateRequest(agent_id=agent_id))).Unpack(saved)
        assert not saved.HasField("error")
        loaded = pb.LoadStateResponse()
        load = pb.LoadStateRequest(agent_id=conformance(target), state=saved.state)
        assert (await ask("2", target, load)).Unpack(loaded)
        assert not loaded.HasField("error")
        bad = pb.LoadStateRequest(agent_id=conformance(target), state="[not an object")
        assert (await ask("3", target, bad)).Unpack(loaded)
        assert loaded.error_code == pb.ERROR_CODE_HANDLER_FAILED
    finally:
        await control_out.put(None)
        control.cancel()
    recall = cpb.Command(case_id="q", recall=cpb.RecallAction())
    assert command_result(await raw.command(target, recall)).recalled == "kept"


# -- lifecycle: graceful shutdown, reconnect (section 4) --------------------------------------


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CONN-017")
async def test_sigterm_finishes_running_handlers_then_exits_zero(
    binary: pathlib.Path, logs: pathlib.Path
) -> None:
    host = start_host(logs)
    worker = start_worker(binary, host.address, logs / "sigterm.log")
    client = RawWorker(host.address)
    try:
        await client.open()
        await client.call(conformance("warm"), json_payload("Ping", {"text": "", "seq": 0}))
        stall = cpb.Command(case_id="s", stall=cpb.StallAction(duration_ms=1500))
        running = asyncio.create_task(client.command("busy", stall))
        await asyncio.sleep(0.5)
        worker.proc.send_signal(signal.SIGTERM)
        result = command_result(await running)
        assert result.stalled_ms == 1500
        code = await asyncio.to_thread(worker.proc.wait, TIMEOUT_S)
        assert code == 0
    finally:
        _stop(worker.proc, signal.SIGKILL)
        await client.close()
        _stop(host.proc)


async def _ping_until_served(address: str, within: float = TIMEOUT_S) -> pb.RpcResponse:
    client = RawWorker(address)
    try:
        await client.open()
        async with asyncio.timeout(within):
            while True:
                response = await client.call(
                    conformance("again"), json_payload("Ping", {"text": "r", "seq": 1})
                )
                if response.error_code != pb.ERROR_CODE_UNKNOWN_TARGET:
                    return response
                await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _worker_subscription_ids(address: str) -> set[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.AgentRpcServiceStub(channel)
        listed = await stub.GetSubscriptions(
            pb.GetSubscriptionsRequest(), metadata=(("client-id", "lister"),), timeout=TIMEOUT_S
        )
    return {
        s.id
        for s in listed.subscriptions
        if "conformance" in (s.type_subscription.agent_type, s.type_prefix_subscription.agent_type)
    }


@pytest.mark.asyncio
@pytest.mark.slow
@pytest.mark.requirement("AWP-CONN-020", "AWP-CONN-021")
async def test_reconnects_and_re_registers_after_the_host_restarts(
    binary: pathlib.Path, logs: pathlib.Path
) -> None:
    first = start_host(logs)
    worker = start_worker(binary, first.address, logs / "reconnect.log")
    second: Host | None = None
    try:
        assert (await _ping_until_served(first.address)).error == ""
        before = await _worker_subscription_ids(first.address)
        assert len(before) == 3
        _stop(first.proc, signal.SIGKILL)
        await asyncio.sleep(0.5)
        second = start_host(logs, first.port)
        response = await _ping_until_served(second.address, within=20.0)
        assert response.error == ""
        assert await _worker_subscription_ids(second.address) == before
        assert worker.proc.poll() is None
    finally:
        assert _stop(worker.proc) == 0
        _stop(first.proc)
        if second is not None:
            _stop(second.proc)


# -- security: TLS, mutual TLS, bearer token (section 6) --------------------------------------


@pytest.mark.asyncio
@pytest.mark.slow
@pytest.mark.requirement("AWP-SEC-001", "AWP-SEC-003", "AWP-SEC-005", "AWP-CONN-002")
@pytest.mark.parametrize("mode", ["tls", "mtls", "mtls+token"])
async def test_secure_connections(
    binary: pathlib.Path, logs: pathlib.Path, certs: pathlib.Path, mode: str
) -> None:
    worker_id, raw_id = f"go-{uuid.uuid4()}", f"raw-{uuid.uuid4()}"
    raw_token, worker_token = uuid.uuid4().hex, uuid.uuid4().hex
    args: list[str] = [
        "--tls-cert",
        str(certs / "server.pem"),
        "--tls-key",
        str(certs / "server.key"),
    ]
    env = {
        "AGENTWORKER_TLS_CA": str(certs / "ca.pem"),
        "AGENTWORKER_TLS_SERVER_NAME": SERVER_NAME,
        "AGENTWORKER_CLIENT_ID": worker_id,
    }
    key = (certs / "client.key").read_bytes()
    chain = (certs / "client.pem").read_bytes()
    raw_credentials = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
    if mode.startswith("mtls"):
        args += ["--client-ca", str(certs / "ca.pem")]
        env.update(
            AGENTWORKER_TLS_CERT=str(certs / "client.pem"),
            AGENTWORKER_TLS_KEY=str(certs / "client.key"),
        )
        raw_credentials = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), key, chain)
    tokens: Sequence[dict[str, str]] = []
    if mode.endswith("token"):
        tokens = [
            {"token": worker_token, "client_id": worker_id},
            {"token": raw_token, "client_id": raw_id},
        ]
        (logs / f"tokens-{worker_id}.json").write_text(json.dumps(tokens))
        args += ["--tokens", str(logs / f"tokens-{worker_id}.json")]
        env["AGENTWORKER_TOKEN"] = worker_token
    secure_host = start_host(logs, None, *args)
    worker = start_worker(binary, secure_host.address, logs / f"{mode}.log", **env)
    client = RawWorker(secure_host.address, raw_credentials, raw_id)
    try:
        await client.open(token=raw_token if tokens else None)
        response = await client.call(conformance("s"), proto_payload(cpb.Ping(text="tls", seq=1)))
        pong = cpb.Pong()
        unpack(response.payload, pong)
        assert pong == cpb.Pong(text="tls", seq=1, agent_key="s")
    finally:
        await client.close()
        assert _stop(worker.proc) == 0
        _stop(secure_host.proc)
