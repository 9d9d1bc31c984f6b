"""A Python, a Go and a TypeScript worker on one reference host, calling and publishing to each
other in every direction, with JSON and protobuf payloads.

All three run the standard conformance agents (spec section 16), so all three register agent type
``conformance``. The reference host lets several workers serve one type only when every member
negotiated CAPABILITY_SHARED_AGENT_TYPES (section 14), and none of the three conformance worker
programs asks for it, nor can be configured to. The workers are therefore connected through a
small forwarding proxy (``SharingProxy``) that adds that capability to each worker's ChannelHello
and removes it from the host's ChannelWelcome: the host shares the type among the three, and each
worker sees the handshake it would see alone. Nothing else is touched; every frame passes
through unchanged.

The host then routes ``conformance/<key>`` to the member with the highest rendezvous score
(AWP-SHR-003), so the test computes, for each language, keys that land on that language's worker.
A driver connected straight to the host sends ``Command.call`` and ``Command.publish`` to the
agent in language A, naming an agent (or a topic source) in language B, and checks B's ``Pong``
in the ``CallOutcome`` or B's ``EventReceipt`` on ``conformance.receipts``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import pathlib
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import grpc
import pytest
import pytest_asyncio

from agentworker.conformance.v1 import contract_pb2 as cpb
from agentworker.v1 import agentworker_pb2 as pb
from tests.crosslang._procs import (
    HELLO_KEY,
    ROOT,
    TIMEOUT_S,
    Host,
    RawWorker,
    WorkerProcess,
    _stop,
    attr,
    command_result,
    conformance,
    go_worker_binary,
    json_payload,
    proto_payload,
    start_host,
    start_worker,
    type_sub,
    typescript_worker_script,
    unpack,
)

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.requirement("AWP-SHR-001", "AWP-SHR-003", "AWP-CNF-010", "AWP-CNF-011"),
]

WELCOME_KEY: Final = "agentworker-welcome-bin"
AGENT_TYPE: Final = "conformance"
RECEIPTS: Final = "conformance.receipts"
LANGUAGES: Final = ("python", "go", "typescript")
PAIRS: Final = [(a, b) for a in LANGUAGES for b in LANGUAGES if a != b]
ENCODINGS: Final = {"json": cpb.ENCODING_JSON, "protobuf": cpb.ENCODING_PROTOBUF}
# Metadata gRPC sets itself on every call; the proxy does not forward it.
_TRANSPORT_METADATA: Final = frozenset({"user-agent", "content-type", "te"})


# -- the proxy -------------------------------------------------------------------------------

if TYPE_CHECKING:
    _Handler = grpc.GenericRpcHandler[bytes, bytes]
else:  # the runtime class is not generic
    _Handler = grpc.GenericRpcHandler


def _forwarded(metadata: Any) -> list[tuple[str, Any]]:
    return [
        (key, value)
        for key, value in metadata or ()
        if not key.startswith((":", "grpc-")) and key not in _TRANSPORT_METADATA
    ]


def _with_capability(raw: bytes, add: bool) -> bytes:
    """Adds CAPABILITY_SHARED_AGENT_TYPES to a ChannelHello, or removes it from a
    ChannelWelcome (both list their capabilities in field ``capabilities``)."""
    message: pb.ChannelHello | pb.ChannelWelcome = pb.ChannelHello() if add else pb.ChannelWelcome()
    message.ParseFromString(raw)
    capabilities = [c for c in message.capabilities if c != pb.CAPABILITY_SHARED_AGENT_TYPES]
    if add:
        capabilities.append(pb.CAPABILITY_SHARED_AGENT_TYPES)
    del message.capabilities[:]
    message.capabilities.extend(capabilities)
    return message.SerializeToString()


class SharingProxy(_Handler):
    """Forwards every call, as bytes, to the host; only the handshake's capability lists change.

    It also notes, per worker client-id, which agents the host sent RPC requests and events to
    (``delivered``), so a test can tell which process served a key.
    """

    def __init__(self, upstream: str) -> None:
        self.delivered: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
        self._channel = grpc.aio.insecure_channel(upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((self,))
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method: str = handler_call_details.method

        async def forward(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> AsyncIterator[bytes]:
            metadata = [
                (key, _with_capability(value, add=True) if key == HELLO_KEY else value)
                for key, value in _forwarded(context.invocation_metadata())
            ]
            call = self._channel.stream_stream(method, None, None)(requests, metadata=metadata)
            try:
                initial = [
                    (key, _with_capability(value, add=False) if key == WELCOME_KEY else value)
                    for key, value in _forwarded(await call.initial_metadata())
                ]
                await context.send_initial_metadata(initial)
                client_id = str(dict(metadata).get("client-id", ""))
                async for reply in call:
                    if method.endswith("/OpenChannel"):
                        self._note(client_id, reply)
                    yield reply
                context.set_trailing_metadata(_forwarded(await call.trailing_metadata()))
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            finally:
                call.cancel()

        return grpc.stream_stream_rpc_method_handler(forward)

    def _note(self, client_id: str, data: bytes) -> None:
        frame = pb.OpenChannelResponse.FromString(data)
        for inner in frame.batch.messages if frame.HasField("batch") else [frame]:
            if inner.HasField("request"):
                target = inner.request.target
                self.delivered[client_id].add(("rpc", f"{target.type}/{target.key}"))
            elif inner.HasField("cloud_event"):
                event = inner.cloud_event
                self.delivered[client_id].add(("event", f"{event.type}/{event.source}"))

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(None)
        await self._channel.close(None)


# -- keys: rendezvous hashing (AWP-SHR-003) ---------------------------------------------------


def _score(client_id: str, key: str) -> int:
    material = f"{client_id}\0{AGENT_TYPE}\0{key}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def serving(client_ids: Sequence[str], key: str) -> str:
    """Returns the member that serves ``conformance/<key>``: highest score, then lower id."""
    return min(client_ids, key=lambda client_id: (-_score(client_id, key), client_id))


@dataclass
class Mesh:
    """The three workers behind the proxy and a driver connected straight to the host."""

    workers: dict[str, WorkerProcess]
    driver: RawWorker
    proxy: SharingProxy
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def key_on(self, language: str) -> str:
        """Returns a fresh agent key that the host routes to ``language``'s worker."""
        members = [worker.client_id for worker in self.workers.values()]
        wanted = self.workers[language].client_id
        while True:
            key = f"{language}-{next(self._counter)}"
            if serving(members, key) == wanted:
                return key

    def receivers(self, kind: str, name: str) -> list[str]:
        """Returns the languages whose worker the host sent this RPC target or event to."""
        return [
            language
            for language, worker in self.workers.items()
            if (kind, name) in self.proxy.delivered[worker.client_id]
        ]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("mixed-languages")


@pytest.fixture(scope="module")
def host(logs: pathlib.Path) -> Iterator[Host]:
    started = start_host(logs)
    yield started
    _stop(started.proc)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(host: Host, logs: pathlib.Path) -> AsyncIterator[Mesh]:
    go_binary, ts_script = await asyncio.gather(
        asyncio.to_thread(go_worker_binary), asyncio.to_thread(typescript_worker_script)
    )
    proxy = SharingProxy(host.address)
    await proxy.start()
    commands: dict[str, tuple[pathlib.Path | list[str], pathlib.Path]] = {
        "python": ([sys.executable, "-m", "reference_worker.conformance_agents"], ROOT),
        "go": (go_binary, ROOT),
        "typescript": (["node", str(ts_script)], ts_script.parents[1]),
    }
    workers: dict[str, WorkerProcess] = {}
    driver = RawWorker(host.address)
    try:
        # One at a time: each "ready" means its registration went through the proxy.
        for language, (command, cwd) in commands.items():
            workers[language] = await asyncio.to_thread(
                start_worker,
                command,
                proxy.address,
                logs / f"{language}.log",
                cwd,
                AGENTWORKER_CLIENT_ID=f"mixed-{language}",
            )
        await driver.open(type_sub(RECEIPTS))
        yield Mesh(workers, driver, proxy)
    finally:
        await driver.close()
        for worker in workers.values():
            await asyncio.to_thread(_stop, worker.proc)
        await proxy.stop()


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_each_worker_answers_pings_for_its_keys(mesh: Mesh, language: str) -> None:
    key = mesh.key_on(language)
    reply = await mesh.driver.call(conformance(key), json_payload("Ping", {"text": "j", "seq": 1}))
    assert reply.error == "", reply.error
    assert reply.payload.data_type == "Pong"
    pong = cpb.Pong()
    unpack((await mesh.driver.call(conformance(key), proto_payload(cpb.Ping(seq=2)))).payload, pong)
    assert pong == cpb.Pong(seq=2, agent_key=key)
    assert mesh.receivers("rpc", f"conformance/{key}") == [language]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("caller", "callee"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
async def test_call_across_languages(mesh: Mesh, caller: str, callee: str, encoding: str) -> None:
    caller_key, callee_key = mesh.key_on(caller), mesh.key_on(callee)
    text = f"{caller} calls {callee}"
    action = cpb.CallAction(
        target=conformance(callee_key),
        ping=cpb.Ping(text=text, seq=42),
        encoding=ENCODINGS[encoding],
        timeout_ms=10_000,
    )
    command = cpb.Command(case_id=f"call-{caller}-{callee}", deadline_ms=20_000, call=action)
    result = command_result(await mesh.driver.command(caller_key, command))
    assert result.case_id == command.case_id
    outcome = result.call
    assert outcome.error_code == pb.ERROR_CODE_UNSPECIFIED, outcome.error_message
    assert outcome.encoding == ENCODINGS[encoding]
    assert outcome.pong == cpb.Pong(text=text, seq=42, agent_key=callee_key)
    # The command ran in the caller's process, the Ping was served by the callee's.
    assert mesh.receivers("rpc", f"conformance/{caller_key}") == [caller]
    assert mesh.receivers("rpc", f"conformance/{callee_key}") == [callee]


@pytest.mark.parametrize(
    ("encoding", "topic_type"),
    [("json", "conformance.broadcast"), ("protobuf", "conformance.prefix.mixed")],
)
@pytest.mark.parametrize(("publisher", "receiver"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
async def test_publish_across_languages(
    mesh: Mesh, publisher: str, receiver: str, encoding: str, topic_type: str
) -> None:
    publisher_key, receiver_key = mesh.key_on(publisher), mesh.key_on(receiver)
    text, count = f"{publisher} to {receiver}", 3
    action = cpb.PublishAction(
        topic_type=topic_type,
        topic_source=receiver_key,
        count=count,
        first_seq=10,
        text=text,
        encoding=ENCODINGS[encoding],
    )
    command = cpb.Command(case_id=f"publish-{publisher}-{receiver}", publish=action)
    result = command_result(await mesh.driver.command(publisher_key, command))
    assert result.published == count
    for seq in range(10, 10 + count):
        event = await mesh.driver.next_event(
            lambda e: e.type == RECEIPTS and e.source == receiver_key, within=TIMEOUT_S
        )
        assert attr(event, "agagentsenderkey") == receiver_key
        receipt = cpb.EventReceipt()
        assert event.proto_data.Unpack(receipt)
        if receipt.HasField("sender"):
            assert receipt.sender == conformance(publisher_key)
        receipt.ClearField("sender")
        receipt.event_id = ""
        assert receipt == cpb.EventReceipt(
            agent_key=receiver_key,
            topic_type=topic_type,
            topic_source=receiver_key,
            text=text,
            seq=seq,
            encoding=ENCODINGS[encoding],
        )
    assert mesh.receivers("rpc", f"conformance/{publisher_key}") == [publisher]
    assert mesh.receivers("event", f"{topic_type}/{receiver_key}") == [receiver]
