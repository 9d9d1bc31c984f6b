"""AutoGen workers and the Go and TypeScript conformance workers on one reference host.

The Go (workers/go) or TypeScript (workers/typescript) conformance worker serves agent type
`conformance` (spec section 16.2); AutoGen's mixed worker serves `ag_mixed` and subscribes to
`xl.to_autogen`; an AutoGen caller calls and publishes; a reference_worker in this process
sends the conformance agent its Commands and collects its EventReceipts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from agentworker.conformance.v1 import contract_pb2 as cpb
from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from reference_worker import Agent, AgentId, MessageContext, Worker, handler
from reference_worker import type_subscription as subscribe_to
from tests.crosslang import _procs as procs
from tests.interop._autogen import AutoGenProcess, event_is
from tests.interop._messages import Inbox
from tests.interop.conftest import StartAutoGen, WorkerFactory, address_of

pytestmark = pytest.mark.asyncio

PING_PB = "agentworker.conformance.v1.Ping"


@pytest.fixture(scope="session")
def go_worker_binary() -> list[str]:
    return [str(procs.go_worker_binary())]


@pytest.fixture(scope="session")
def ts_worker_script() -> list[str]:
    return ["node", str(procs.typescript_worker_script())]


class ReceiptSink(Agent):
    """Collects the EventReceipts conformance agents publish on conformance.receipts."""

    inbox: Inbox | None = None

    @handler
    async def on_receipt(self, message: cpb.EventReceipt, ctx: MessageContext) -> None:
        if ReceiptSink.inbox is not None:
            ReceiptSink.inbox.add(message)


@dataclass
class Scene:
    language: str
    mixed: AutoGenProcess
    caller: AutoGenProcess
    driver: Worker
    receipts: Inbox


@pytest_asyncio.fixture(params=["go", "typescript"])
async def scene(
    request: pytest.FixtureRequest,
    host: Host,
    autogen: StartAutoGen,
    make_worker: WorkerFactory,
) -> AsyncIterator[Scene]:
    language: str = request.param
    fixture = "go_worker_binary" if language == "go" else "ts_worker_script"
    argv: list[str] = request.getfixturevalue(fixture)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWORKER_")}
    env["AGENTWORKER_HOST_ADDRESS"] = address_of(host)
    conformance = await AutoGenProcess.spawn(
        argv,
        name=f"{language} worker",
        cwd=procs.GO_MODULE if language == "go" else procs.TS_DIR,
        env=env,
    )
    try:
        await conformance.wait_for(event_is("text", text="ready"), within=30.0)
        mixed = await autogen(
            "mixed_worker.py",
            *("--agent-type", "ag_mixed", "--topic-type", "xl.to_autogen", "--stdin-lifeline"),
            name="mixed",
        )
        caller = await autogen("caller.py", "--name", "caller", name="caller")
        receipts = Inbox()
        ReceiptSink.inbox = receipts
        driver = await make_worker()
        await driver.register(
            "xl_sink", ReceiptSink, subscriptions=[subscribe_to("conformance.receipts")]
        )
        yield Scene(language, mixed, caller, driver, receipts)
    finally:
        ReceiptSink.inbox = None
        await conformance.close()


async def command(scene: Scene, key: str, **action: object) -> cpb.CommandResult:
    result = await scene.driver.send(
        cpb.Command(case_id=f"autogen-{scene.language}", deadline_ms=10_000, **action),  # type: ignore[arg-type]
        AgentId("conformance", key),
        timeout=15.0,
    )
    assert isinstance(result, cpb.CommandResult)
    return result


@pytest.mark.requirement("AWP-CNF-003", "AWP-CNF-004", "AWP-CNF-005", "AWP-CNF-010", "AWP-CNF-011")
async def test_autogen_and_conformance_worker_exchange_rpcs_and_events(scene: Scene) -> None:
    # AutoGen calls the conformance agent with a JSON Ping and decodes its JSON Pong.
    result = await scene.caller.call(("conformance", "k1"), "Ping", {"text": "hi", "seq": 5})
    assert result["ok"] is True, result
    assert (result["reply_type"], result["reply"]) == (
        "Pong",
        {"text": "hi", "seq": 5, "agent_key": "k1"},
    )

    # AutoGen publishes JSON and protobuf Pings the conformance agent subscribes to; its
    # receipts show the events as AutoGen sent them (the runtime itself as "unknown" sender).
    await scene.caller.send(
        {
            "op": "publish",
            "topic": ["conformance.broadcast", "r1"],
            "type": "Ping",
            "body": {"text": "json event", "seq": 1},
        }
    )
    await scene.caller.send(
        {
            "op": "publish",
            "topic": ["conformance.prefix.any", "r2"],
            "type": PING_PB,
            "body": {"text": "protobuf event", "seq": 2},
            "encoding": "protobuf",
        }
    )
    receipts = sorted(await scene.receipts.wait_for(2), key=lambda r: r.seq)
    assert [
        (r.agent_key, r.topic_type, r.topic_source, r.text, r.seq, r.encoding) for r in receipts
    ] == [
        ("r1", "conformance.broadcast", "r1", "json event", 1, cpb.ENCODING_JSON),
        ("r2", "conformance.prefix.any", "r2", "protobuf event", 2, cpb.ENCODING_PROTOBUF),
    ]
    assert all(r.sender == pb.AgentId(type="unknown", key="unknown") for r in receipts)

    # The conformance agent calls the AutoGen agent (JSON; AutoGen answers only in JSON).
    outcome = await command(
        scene,
        "k1",
        call=cpb.CallAction(
            target=pb.AgentId(type="ag_mixed", key="k2"),
            ping=cpb.Ping(text="to autogen", seq=7),
            encoding=cpb.ENCODING_JSON,
            timeout_ms=5_000,
        ),
    )
    assert outcome.call.error_message == ""
    assert outcome.call.pong == cpb.Pong(text="to autogen", seq=7, agent_key="k2")
    assert outcome.call.encoding == cpb.ENCODING_JSON
    rpc = await scene.mixed.wait_for(event_is("rpc"))
    assert (rpc["type"], rpc["sender"]) == ("Ping", ["conformance", "k1"])

    # The conformance agent publishes JSON and protobuf Pings that AutoGen subscribes to.
    for encoding, source in ((cpb.ENCODING_JSON, "j"), (cpb.ENCODING_PROTOBUF, "p")):
        published = await command(
            scene,
            "k1",
            publish=cpb.PublishAction(
                topic_type="xl.to_autogen",
                topic_source=source,
                count=3,
                first_seq=1,
                text=f"from {scene.language}",
                encoding=encoding,
            ),
        )
        assert published.published == 3
    received = await scene.mixed.wait_for_count(event_is("received"), 6, within=20.0)
    by_source = {
        source: [
            (line["encoding"], line["body"]["seq"])
            for line in received
            if line["topic"] == ["xl.to_autogen", source]
        ]
        for source in ("j", "p")
    }
    assert by_source == {
        "j": [("json", 1), ("json", 2), ("json", 3)],
        "p": [("protobuf", 1), ("protobuf", 2), ("protobuf", 3)],
    }
    assert all(line["sender"] == ["conformance", "k1"] for line in received)
    assert all(line["body"]["text"] == f"from {scene.language}" for line in received)


async def test_conformance_worker_call_to_unknown_type_reports_the_hosts_error(
    scene: Scene,
) -> None:
    # Control: the same host error AutoGen raises reaches the other languages as a typed code.
    outcome = await command(
        scene,
        "k1",
        call=cpb.CallAction(
            target=pb.AgentId(type="nobody", key="k"),
            ping=cpb.Ping(text="x", seq=1),
            encoding=cpb.ENCODING_JSON,
            timeout_ms=5_000,
        ),
    )
    assert outcome.call.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
    result = await scene.caller.call(("nobody", "k"), "Ping", {"text": "x", "seq": 1})
    assert result["error"] == "no worker serves agent type 'nobody'"
    assert result["error"] in outcome.call.error_message
