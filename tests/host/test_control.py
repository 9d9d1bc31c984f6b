"""Control channel: save/load state routing, type URL translation and host-generated errors."""

from __future__ import annotations

import grpc
import pytest

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import Host
from tests.host._raw import RawControl, RawWorker, eventually, hello, pack
from tests.host.conftest import ConnectControl, ConnectWorker, StartHost

V1 = "type.googleapis.com/agentworker.v1."
LEGACY = "type.googleapis.com/agents."


async def _stateful(
    connect: ConnectWorker, connect_control: ConnectControl, name: str, agent_type: str
) -> tuple[RawWorker, RawControl]:
    worker = await connect(name, hello(pb.CAPABILITY_STATE))
    await worker.register(agent_type)
    return worker, await connect_control(name)


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-001", "AWP-CTL-003")
async def test_save_and_load_are_routed_to_the_serving_worker_and_back(
    host: Host, connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    _, owner = await _stateful(connect, connect_control, "owner", "keeper")
    await connect("asker", hello(pb.CAPABILITY_STATE))
    asker = await connect_control("asker")
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type="keeper", key="k1"))
    # respond_to is not trusted: the host overwrites it with the sender's client-id.
    await asker.send("rpc-1", "agentid=keeper/k1", pack(request), respond_to="clientid=owner")
    delivered = await owner.next()
    assert delivered.rpc_id == "rpc-1"
    assert delivered.destination == "agentid=keeper/k1"
    assert delivered.respond_to == "clientid=asker"
    assert delivered.rpc_message.type_url == V1 + "SaveStateRequest"
    assert pb.SaveStateRequest.FromString(delivered.rpc_message.value) == request
    await owner.send("rpc-1", "clientid=asker", pack(pb.SaveStateResponse(state="s-1")))
    answer = await asker.next()
    assert answer.rpc_id == "rpc-1"
    assert answer.rpc_message.type_url == V1 + "SaveStateResponse"
    assert pb.SaveStateResponse.FromString(answer.rpc_message.value).state == "s-1"

    load = pb.LoadStateRequest(agent_id=pb.AgentId(type="keeper", key="k2"), state="s-1")
    await asker.send("rpc-2", "agentid=keeper/k2", pack(load))
    delivered = await owner.next()
    assert pb.LoadStateRequest.FromString(delivered.rpc_message.value) == load
    await owner.send("rpc-2", "clientid=asker", pack(pb.LoadStateResponse()))
    answer = await asker.next()
    assert answer.rpc_message.type_url == V1 + "LoadStateResponse"
    assert host.metrics.control_responses == 2


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-002", "AWP-VER-011")
async def test_type_urls_are_translated_between_legacy_and_v1_peers(
    connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    _, owner = await _stateful(connect, connect_control, "owner", "keeper")
    await connect("legacy-asker")
    asker = await connect_control("legacy-asker")
    request = pb.SaveStateRequest(agent_id=pb.AgentId(type="keeper", key="k"))
    await asker.send("1", "agentid=keeper/k", pack(request, "agents"))
    delivered = await owner.next()
    assert delivered.rpc_message.type_url == V1 + "SaveStateRequest"
    await owner.send("1", "clientid=legacy-asker", pack(pb.SaveStateResponse(state="x")))
    answer = await asker.next()
    assert answer.rpc_message.type_url == LEGACY + "SaveStateResponse"
    assert pb.SaveStateResponse.FromString(answer.rpc_message.value).state == "x"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-004")
async def test_unknown_target_is_answered_with_the_matching_response_type(
    connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    await connect("asker", hello())
    asker = await connect_control("asker")
    save = pb.SaveStateRequest(agent_id=pb.AgentId(type="nobody", key="k"))
    await asker.send("s", "agentid=nobody/k", pack(save))
    answer = await asker.next()
    assert answer.rpc_id == "s"
    assert answer.rpc_message.type_url == V1 + "SaveStateResponse"
    saved = pb.SaveStateResponse.FromString(answer.rpc_message.value)
    assert saved.error
    assert saved.error_code == pb.ERROR_CODE_UNKNOWN_TARGET
    load = pb.LoadStateRequest(agent_id=pb.AgentId(type="nobody", key="k"), state="x")
    await asker.send("l", "agentid=nobody/k", pack(load))
    answer = await asker.next()
    assert answer.rpc_message.type_url == V1 + "LoadStateResponse"
    loaded = pb.LoadStateResponse.FromString(answer.rpc_message.value)
    assert loaded.error
    assert loaded.error_code == pb.ERROR_CODE_UNKNOWN_TARGET


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-004")
async def test_legacy_sender_gets_errors_with_legacy_type_urls(
    connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    await connect("legacy")
    asker = await connect_control("legacy")
    save = pb.SaveStateRequest(agent_id=pb.AgentId(type="nobody", key="k"))
    await asker.send("s", "agentid=nobody/k", pack(save, "agents"))
    answer = await asker.next()
    assert answer.rpc_message.type_url == LEGACY + "SaveStateResponse"
    assert pb.SaveStateResponse.FromString(answer.rpc_message.value).error_code == (
        pb.ERROR_CODE_UNKNOWN_TARGET
    )


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-004")
async def test_worker_without_control_channel_is_target_unavailable(
    connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    owner = await connect("owner", hello())
    await owner.register("keeper")
    await connect("asker", hello())
    asker = await connect_control("asker")
    await asker.send("1", "agentid=keeper/k", pack(pb.SaveStateRequest()))
    answer = pb.SaveStateResponse.FromString((await asker.next()).rpc_message.value)
    assert answer.error_code == pb.ERROR_CODE_TARGET_UNAVAILABLE
    assert answer.error


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-004")
async def test_target_closing_its_control_channel_fails_pending_requests(
    connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    _, owner = await _stateful(connect, connect_control, "owner", "keeper")
    await connect("asker", hello())
    asker = await connect_control("asker")
    await asker.send("1", "agentid=keeper/k", pack(pb.LoadStateRequest(state="x")))
    await owner.next()
    owner.close()
    answer = await asker.next()
    assert answer.rpc_id == "1"
    loaded = pb.LoadStateResponse.FromString(answer.rpc_message.value)
    assert loaded.error_code == pb.ERROR_CODE_TARGET_UNAVAILABLE


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-003")
async def test_response_from_a_worker_that_was_not_asked_is_dropped(
    host: Host, connect: ConnectWorker, connect_control: ConnectControl
) -> None:
    _, owner = await _stateful(connect, connect_control, "owner", "keeper")
    await connect("asker", hello())
    asker = await connect_control("asker")
    await connect("intruder", hello())
    intruder = await connect_control("intruder")
    await asker.send("1", "agentid=keeper/k", pack(pb.SaveStateRequest()))
    await owner.next()
    await intruder.send("1", "clientid=asker", pack(pb.SaveStateResponse(state="forged")))
    await intruder.send("2", "clientid=asker", pack(pb.SaveStateResponse(state="unasked")))
    await eventually(lambda: host.metrics.control_dropped == 2)
    await owner.send("1", "clientid=asker", pack(pb.SaveStateResponse(state="genuine")))
    answer = await asker.next()
    assert pb.SaveStateResponse.FromString(answer.rpc_message.value).state == "genuine"


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-CTL-004")
async def test_control_request_deadline(start_host: StartHost) -> None:
    host = await start_host(default_rpc_timeout_ms=300)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        owner = await RawWorker(channel, "owner").open(hello(pb.CAPABILITY_STATE))
        await owner.register("keeper")
        owner_control = await RawControl(channel, "owner").open()
        asker_worker = await RawWorker(channel, "asker").open(hello())
        asker = await RawControl(channel, "asker").open()
        await asker.send("1", "agentid=keeper/k", pack(pb.SaveStateRequest()))
        await owner_control.next()
        answer = pb.SaveStateResponse.FromString((await asker.next()).rpc_message.value)
        assert answer.error_code == pb.ERROR_CODE_DEADLINE_EXCEEDED
        # The late response is not delivered.
        await owner_control.send("1", "clientid=asker", pack(pb.SaveStateResponse(state="late")))
        await eventually(lambda: host.metrics.control_dropped == 1)
        for control in (owner_control, asker):
            control.close()
        for worker in (owner, asker_worker):
            await worker.close()
