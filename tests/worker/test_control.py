"""The control channel's message handling, both type URL families (AWP-CTL-002)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from google.protobuf import any_pb2

from agentworker.v1 import agentworker_pb2
from reference_worker import Agent, AgentId
from reference_worker._control import StateService

pytestmark = pytest.mark.asyncio


class Stateful(Agent):
    def __init__(self) -> None:
        super().__init__()
        self.state = "s0"

    async def save_state(self) -> Mapping[str, Any]:
        return {"state": self.state}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self.state = str(state["state"])


def _frame(
    type_url: str, message: agentworker_pb2.SaveStateRequest | agentworker_pb2.LoadStateRequest
) -> agentworker_pb2.OpenControlChannelResponse:
    return agentworker_pb2.OpenControlChannelResponse(
        rpc_id="7",
        destination="agentid=stateful/k",
        respond_to="clientid=requester",
        rpc_message=any_pb2.Any(type_url=type_url, value=message.SerializeToString()),
    )


@pytest.mark.requirement("AWP-CTL-001", "AWP-CTL-002", "AWP-CTL-003", "AWP-CTL-005")
@pytest.mark.parametrize("prefix", ["agentworker.v1", "agents"])
async def test_state_requests_are_answered_in_the_senders_type_url_family(prefix: str) -> None:
    agents: dict[AgentId, Agent] = {AgentId("stateful", "k"): Stateful()}

    def lookup(agent_id: AgentId) -> Agent:
        return agents[agent_id]

    service = StateService("me", lookup)
    written: list[agentworker_pb2.OpenControlChannelRequest] = []

    async def write(frame: agentworker_pb2.OpenControlChannelRequest) -> None:
        written.append(frame)

    target = agentworker_pb2.AgentId(type="stateful", key="k")
    url = f"type.googleapis.com/{prefix}."
    await service.on_frame(
        _frame(
            url + "LoadStateRequest",
            agentworker_pb2.LoadStateRequest(agent_id=target, state=json.dumps({"state": "s1"})),
        ),
        write,
    )
    await service.on_frame(
        _frame(url + "SaveStateRequest", agentworker_pb2.SaveStateRequest(agent_id=target)), write
    )
    missing = agentworker_pb2.AgentId(type="stateful", key="nobody")
    await service.on_frame(
        _frame(url + "SaveStateRequest", agentworker_pb2.SaveStateRequest(agent_id=missing)), write
    )
    assert [frame.rpc_message.type_url for frame in written] == [
        url + "LoadStateResponse",
        url + "SaveStateResponse",
        url + "SaveStateResponse",
    ]
    assert all(frame.rpc_id == "7" for frame in written)
    assert all(frame.destination == "clientid=requester" for frame in written)
    assert all(not frame.HasField("respond_to") for frame in written)
    loaded = agentworker_pb2.LoadStateResponse()
    loaded.ParseFromString(written[0].rpc_message.value)
    assert not loaded.HasField("error")
    saved = agentworker_pb2.SaveStateResponse()
    saved.ParseFromString(written[1].rpc_message.value)
    assert json.loads(saved.state) == {"state": "s1"}
    failed = agentworker_pb2.SaveStateResponse()
    failed.ParseFromString(written[2].rpc_message.value)
    assert failed.error
    assert failed.error_code == agentworker_pb2.ERROR_CODE_HANDLER_FAILED
