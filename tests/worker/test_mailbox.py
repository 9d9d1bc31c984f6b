"""Per-agent mailboxes and the worker's own inbound bound (AWP-CONN-040, AWP-FLOW-030..033)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from reference_worker import (
    Agent,
    AgentId,
    DeadlineExceededError,
    MessageContext,
    OverloadedError,
    ShuttingDownError,
    TopicId,
    handler,
    type_subscription,
)
from tests.worker.agents import Answer, Question
from tests.worker.conftest import Inbox, WorkerFactory, eventually

pytestmark = pytest.mark.asyncio


@dataclass
class Outer:
    text: str


@dataclass
class Step:
    seq: int
    hold: bool = False
    pause: float = 0.0


class Inner(Agent):
    @handler
    async def on_question(self, message: Question, ctx: MessageContext) -> Answer:
        return Answer(f"inner {self.id.key}: {message.text}")


class Caller(Agent):
    """Calls an agent of the same worker from inside its handler."""

    @handler
    async def on_outer(self, message: Outer, ctx: MessageContext) -> Answer:
        reply = await self.send(Question(message.text), AgentId("inner", self.id.key), timeout=30)
        assert isinstance(reply, Answer)
        return reply


class Recorder(Agent):
    """Logs the start and end of each handler; `hold` waits for `Recorder.release`."""

    log: Inbox
    release: asyncio.Event

    @handler
    async def on_step(self, message: Step, ctx: MessageContext) -> Answer:
        Recorder.log.add(("start", self.id.key, message.seq))
        if message.hold:
            await Recorder.release.wait()
        else:
            await asyncio.sleep(message.pause)  # the handler's own work, not a test wait
        Recorder.log.add(("end", self.id.key, message.seq))
        return Answer(str(message.seq))


@pytest.fixture(autouse=True)
def _recorder() -> None:
    Recorder.log = Inbox()
    Recorder.release = asyncio.Event()


@pytest.mark.requirement("AWP-FLOW-030")
async def test_handlers_holding_every_slot_complete_calls_to_their_own_worker(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker(max_concurrency=2)
    await server.register("caller", Caller)
    await server.register("inner", Inner)
    client = await make_worker()
    client.add_message_type(Answer)
    keys = [f"k{n}" for n in range(6)]  # three times the slots, each calling the same worker
    replies = await asyncio.wait_for(
        asyncio.gather(*(client.send(Outer(k), AgentId("caller", k), timeout=30) for k in keys)),
        20,
    )
    assert replies == [Answer(f"inner {k}: {k}") for k in keys]
    assert server.connections == 1


@pytest.mark.requirement("AWP-CONN-040")
async def test_one_agent_handles_events_one_at_a_time_in_order(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker()
    await server.register("rec", Recorder, subscriptions=[type_subscription("steps")])
    client = await make_worker()
    topic = TopicId("steps", "solo")
    await client.publish(Step(0, hold=True), topic)
    for seq in range(1, 5):
        await client.publish(Step(seq), topic)
    await Recorder.log.wait_for(1)
    other = TopicId("steps", "other")
    await client.publish(Step(9), other)  # another agent is not held up (AWP-CONN-041)
    await Recorder.log.wait_for(3)
    assert ("end", "other", 9) in Recorder.log.items
    assert ("start", "solo", 1) not in Recorder.log.items
    Recorder.release.set()
    log = await Recorder.log.wait_for(12)
    solo = [entry for entry in log if entry[1] == "solo"]
    assert solo == [(edge, "solo", seq) for seq in range(5) for edge in ("start", "end")]


@pytest.mark.requirement("AWP-CONN-040")
async def test_requests_and_events_share_the_agents_mailbox(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await server.register("rec", Recorder, subscriptions=[type_subscription("steps")])
    client = await make_worker()
    client.add_message_type(Answer)
    await client.publish(Step(0, hold=True), TopicId("steps", "m"))
    await Recorder.log.wait_for(1)
    call = asyncio.ensure_future(client.send(Step(1), AgentId("rec", "m"), timeout=30))
    await eventually(lambda: server.inbound_queue_depth == 1)  # waiting behind the event
    assert not call.done()
    Recorder.release.set()
    assert await asyncio.wait_for(call, 15) == Answer("1")
    assert [entry[2] for entry in Recorder.log.items] == [0, 0, 1, 1]


@pytest.mark.requirement("AWP-FLOW-031")
async def test_a_full_inbound_queue_answers_requests_overloaded(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker(max_concurrency=1, max_queued=1)
    await server.register("rec", Recorder)
    client = await make_worker()
    client.add_message_type(Answer)
    running = asyncio.ensure_future(
        client.send(Step(0, hold=True), AgentId("rec", "a"), timeout=30)
    )
    await Recorder.log.wait_for(1)
    queued = asyncio.ensure_future(client.send(Step(1), AgentId("rec", "b"), timeout=30))
    await eventually(lambda: server.inbound_queue_depth == 1)
    with pytest.raises(OverloadedError):
        await client.send(Step(2), AgentId("rec", "c"), timeout=30)
    assert server.overloaded_requests == 1
    Recorder.release.set()
    assert list(await asyncio.wait_for(asyncio.gather(running, queued), 15)) == [
        Answer("0"),
        Answer("1"),
    ]


@pytest.mark.requirement("AWP-FLOW-032")
async def test_events_beyond_the_queue_are_held_back_not_dropped(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker(max_concurrency=1, max_queued=2)
    await server.register("rec", Recorder, subscriptions=[type_subscription("steps")])
    client = await make_worker()
    topic = TopicId("steps", "q")
    await client.publish(Step(0, hold=True), topic)
    for seq in range(1, 20):
        await client.publish(Step(seq), topic)
    await Recorder.log.wait_for(1)
    await eventually(lambda: server.inbound_queue_depth == 2)
    assert server.inbound_queue_depth == 2  # the reader waits instead of queueing more
    Recorder.release.set()
    log = await Recorder.log.wait_for(40)
    assert [entry[2] for entry in log if entry[0] == "start"] == list(range(20))


@pytest.mark.requirement("AWP-FLOW-033", "AWP-CONN-040")
async def test_a_request_whose_deadline_passes_in_the_mailbox_never_runs(
    make_worker: WorkerFactory,
) -> None:
    server = await make_worker()
    await server.register("rec", Recorder)
    client = await make_worker()
    client.add_message_type(Answer)
    # The first handler works 3 s; the second request's 0.2 s pass meanwhile in the mailbox.
    busy = asyncio.ensure_future(client.send(Step(0, pause=3.0), AgentId("rec", "d"), timeout=30))
    await Recorder.log.wait_for(1)
    with pytest.raises(DeadlineExceededError):
        await client.send(Step(1), AgentId("rec", "d"), timeout=0.2)
    assert await asyncio.wait_for(busy, 15) == Answer("0")
    # A later message to the same agent runs after the expired one was dealt with.
    assert await client.send(Step(2), AgentId("rec", "d"), timeout=15) == Answer("2")
    assert [entry[2] for entry in Recorder.log.items if entry[0] == "start"] == [0, 2]


class Patient(Agent):
    """Waits until its cancellation token fires (a drain), then answers."""

    started: Inbox

    @handler
    async def on_step(self, message: Step, ctx: MessageContext) -> Answer:
        Patient.started.add(message.seq)
        fired = asyncio.Event()
        ctx.cancellation_token.add_callback(fired.set)
        await fired.wait()
        return Answer(f"drained {message.seq}")


@pytest.mark.requirement("AWP-CONN-017", "AWP-CONN-023")
async def test_stop_answers_queued_requests_and_lets_running_ones_finish(
    make_worker: WorkerFactory,
) -> None:
    Patient.started = Inbox()
    server = await make_worker(max_concurrency=1)
    await server.register("patient", Patient)
    client = await make_worker()
    client.add_message_type(Answer)
    running = asyncio.ensure_future(client.send(Step(0), AgentId("patient", "a"), timeout=30))
    await Patient.started.wait_for(1)
    queued = asyncio.ensure_future(client.send(Step(1), AgentId("patient", "b"), timeout=30))
    await eventually(lambda: server.inbound_queue_depth == 1)
    await server.stop(grace=10.0)
    assert await asyncio.wait_for(running, 10) == Answer("drained 0")
    with pytest.raises(ShuttingDownError):
        await asyncio.wait_for(queued, 10)
    assert Patient.started.items == [0]


async def test_a_stopped_worker_starts_again_and_serves(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await server.register("rec", Recorder)
    client = await make_worker()
    client.add_message_type(Answer)
    assert await client.send(Step(1), AgentId("rec", "r"), timeout=10) == Answer("1")
    await server.stop(grace=1.0)
    await server.start()
    assert await client.send(Step(2), AgentId("rec", "r"), timeout=10) == Answer("2")
