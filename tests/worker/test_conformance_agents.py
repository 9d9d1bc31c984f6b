"""The conformance agents process (section 16) driven over a real host."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agentworker.conformance.v1 import contract_pb2
from agentworker.v1 import agentworker_pb2
from reference_host import Host
from reference_worker import (
    Agent,
    AgentId,
    HandlerFailedError,
    MessageContext,
    TopicId,
    UnsupportedMessageError,
    Worker,
    handler,
    type_subscription,
)
from reference_worker.conformance_agents import Ping, Pong
from tests.worker.agents import Question
from tests.worker.conftest import PYTHON, Inbox, WorkerFactory, address_of, subprocess_env

pytestmark = pytest.mark.asyncio


class Probe(Agent):
    """Records the Pings and receipts the conformance agent publishes."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self._inbox = inbox

    @handler
    async def on_item(
        self, message: contract_pb2.EventReceipt | contract_pb2.Ping | Ping, ctx: MessageContext
    ) -> None:
        self._inbox.add((message, ctx.sender, ctx.topic_id))


@pytest_asyncio.fixture
async def conformance_process(host: Host) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "reference_worker.conformance_agents",
        env=subprocess_env(AGENTWORKER_HOST_ADDRESS=address_of(host)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        assert line.strip() == b"ready", line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _command(case: str, deadline_ms: int = 10_000, **action: object) -> contract_pb2.Command:
    return contract_pb2.Command(case_id=case, deadline_ms=deadline_ms, **action)  # type: ignore[arg-type]


@pytest.mark.requirement(
    "AWP-CNF-001",
    "AWP-CNF-002",
    "AWP-CNF-003",
    "AWP-CNF-004",
    "AWP-CNF-005",
    "AWP-CNF-006",
    "AWP-CNF-010",
    "AWP-CNF-011",
    "AWP-CNF-012",
    "AWP-CNF-013",
    "AWP-CNF-014",
    "AWP-CNF-015",
    "AWP-CONN-017",
)
async def test_conformance_agent_behaviour(
    conformance_process: asyncio.subprocess.Process, make_worker: WorkerFactory
) -> None:
    inbox = Inbox()
    driver: Worker = await make_worker()
    await driver.register(
        "probe",
        lambda: Probe(inbox),
        subscriptions=[type_subscription("conformance.receipts"), type_subscription("probe.pings")],
    )
    driver.add_message_type(Pong)
    target = AgentId("conformance", "c1")

    # Ping as an RPC, in both encodings.
    assert await driver.send(Ping("hello", 3), target, timeout=10) == Pong("hello", 3, "c1")
    pong = await driver.send(contract_pb2.Ping(text="p", seq=4), target, timeout=10)
    assert pong == contract_pb2.Pong(text="p", seq=4, agent_key="c1")

    # Any other payload is unsupported.
    with pytest.raises(UnsupportedMessageError):
        await driver.send(Question("?"), target, timeout=10)

    # Publish command: Pings in order on the given topic.
    publish = contract_pb2.PublishAction(
        topic_type="probe.pings",
        topic_source="s",
        count=5,
        first_seq=10,
        text="x",
        encoding=contract_pb2.ENCODING_PROTOBUF,
    )
    result = await driver.send(_command("pub", publish=publish), target, timeout=10)
    assert result == contract_pb2.CommandResult(case_id="pub", published=5)
    items = await inbox.wait_for(5)
    assert [m.seq for m, _, _ in items] == [10, 11, 12, 13, 14]
    assert all(sender == target for _, sender, _ in items)

    # A Ping event on the broadcast topic produces a receipt from the agent keyed by the source.
    await driver.publish(Ping("evt", 7), TopicId("conformance.broadcast", "b1"))
    items = await inbox.wait_for(6)
    receipt = items[5][0]
    assert isinstance(receipt, contract_pb2.EventReceipt)
    assert (receipt.agent_key, receipt.topic_type, receipt.topic_source) == (
        "b1",
        "conformance.broadcast",
        "b1",
    )
    assert (receipt.text, receipt.seq, receipt.encoding) == ("evt", 7, contract_pb2.ENCODING_JSON)
    assert receipt.event_id
    assert items[5][2] == TopicId("conformance.receipts", "b1")
    # A protobuf Ping on a prefix topic, from an agent: the receipt names the sender.
    await driver.publish(
        contract_pb2.Ping(text="pfx", seq=8),
        TopicId("conformance.prefix.x", "b2"),
        sender=AgentId("probe", "me"),
    )
    items = await inbox.wait_for(7)
    receipt = items[6][0]
    assert isinstance(receipt, contract_pb2.EventReceipt)
    assert (receipt.agent_key, receipt.topic_type, receipt.encoding) == (
        "b2",
        "conformance.prefix.x",
        contract_pb2.ENCODING_PROTOBUF,
    )
    assert receipt.sender == agentworker_pb2.AgentId(type="probe", key="me")

    # fail, stall, the command deadline, remember and recall.
    fail = contract_pb2.FailAction(message="requested failure")
    with pytest.raises(HandlerFailedError, match="requested failure"):
        await driver.send(_command("fail", fail=fail), target, timeout=10)
    stall = contract_pb2.StallAction(duration_ms=50)
    stalled = await driver.send(_command("stall", stall=stall), target, timeout=10)
    assert stalled.stalled_ms == 50
    long_stall = contract_pb2.StallAction(duration_ms=20_000)
    with pytest.raises(HandlerFailedError, match="deadline"):
        await driver.send(_command("late", deadline_ms=200, stall=long_stall), target, timeout=10)
    remember = contract_pb2.RememberAction(value="v1")
    remembered = await driver.send(_command("r", remember=remember), target, timeout=10)
    assert remembered.remembered == "v1"
    recall = contract_pb2.RecallAction()
    assert (await driver.send(_command("q", recall=recall), target, timeout=10)).recalled == "v1"
    state = await driver.save_agent_state(target)
    assert "v1" in state
    await driver.load_agent_state(AgentId("conformance", "c2"), state)
    recalled = await driver.send(_command("q2", recall=recall), AgentId("conformance", "c2"))
    assert recalled.recalled == "v1"

    # The call action reports the error its runtime saw.
    call = contract_pb2.CallAction(
        target=agentworker_pb2.AgentId(type="nobody", key="k"),
        ping=contract_pb2.Ping(text="c", seq=1),
        encoding=contract_pb2.ENCODING_JSON,
        timeout_ms=2000,
    )
    outcome = await driver.send(_command("call", call=call), target, timeout=10)
    assert outcome.call.error_code == agentworker_pb2.ERROR_CODE_UNKNOWN_TARGET
    call.target.type = "conformance"
    outcome = await driver.send(_command("call2", call=call), target, timeout=10)
    assert outcome.call.pong == contract_pb2.Pong(text="c", seq=1, agent_key="k")
    assert outcome.call.encoding == contract_pb2.ENCODING_JSON

    # SIGTERM: drain and exit 0.
    conformance_process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        assert await conformance_process.wait() == 0
