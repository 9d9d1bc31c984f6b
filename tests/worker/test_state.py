"""Agent state over the control channel (section 13)."""

from __future__ import annotations

import pytest

from reference_worker import AgentId, HandlerFailedError
from tests.worker.agents import Answer, Echo, Listener, Remember
from tests.worker.conftest import Inbox, WorkerFactory

pytestmark = pytest.mark.asyncio


@pytest.mark.requirement("AWP-CTL-001", "AWP-CTL-003")
async def test_save_on_one_agent_and_load_into_another(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await server.register("echo", Echo)
    client = await make_worker()
    client.add_message_type(Answer)
    await client.send(Remember("kept"), AgentId("echo", "x"), timeout=10)
    state = await client.save_agent_state(AgentId("echo", "x"))
    await client.load_agent_state(AgentId("echo", "y"), state)
    assert await client.save_agent_state(AgentId("echo", "y")) == state
    agent = await server.agent(AgentId("echo", "y"))
    assert isinstance(agent, Echo)
    assert agent.value == "kept"


@pytest.mark.requirement("AWP-CTL-005")
async def test_agent_without_state_support_fails_the_request(make_worker: WorkerFactory) -> None:
    server = await make_worker()
    await server.register("listener", lambda: Listener(Inbox()))
    client = await make_worker()
    with pytest.raises(HandlerFailedError):
        await client.save_agent_state(AgentId("listener", "k"))
