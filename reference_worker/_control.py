"""The control channel: serving and requesting agent state (spec section 13)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from agentworker.v1 import agentworker_pb2
from reference_worker._agent import Agent
from reference_worker._errors import DeadlineExceededError, error_for_code
from reference_worker._ids import AgentId

__all__ = ["StateService"]

_log = logging.getLogger("reference_worker.control")

V1_PREFIX = "type.googleapis.com/agentworker.v1."
LEGACY_PREFIX = "type.googleapis.com/agents."

ControlFrame = agentworker_pb2.OpenControlChannelRequest
StateResponse = agentworker_pb2.SaveStateResponse | agentworker_pb2.LoadStateResponse
AgentLookup = Callable[[AgentId], Agent]
ControlWriter = Callable[[ControlFrame], Awaitable[None]]


def _split(type_url: str) -> tuple[str, str]:
    """Returns (prefix, message name) of a control type URL, accepting both forms (AWP-CTL-002)."""
    for prefix in (V1_PREFIX, LEGACY_PREFIX):
        if type_url.startswith(prefix):
            return prefix, type_url[len(prefix) :]
    return "", type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1]


def _pack(prefix: str, message: Message) -> any_pb2.Any:
    name = message.DESCRIPTOR.name
    return any_pb2.Any(type_url=(prefix or V1_PREFIX) + name, value=message.SerializeToString())


def _agent_from_destination(destination: str) -> AgentId | None:
    if not destination.startswith("agentid="):
        return None
    agent_type, _, key = destination[len("agentid=") :].partition("/")
    return AgentId(agent_type, key)


class StateService:
    """Answers SaveState/LoadState requests for local agents and issues them for remote ones."""

    def __init__(self, client_id: str, lookup: AgentLookup) -> None:
        self._client_id = client_id
        self._lookup = lookup
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[StateResponse]] = {}

    # -- serving (AWP-CTL-001, AWP-CTL-005) ----------------------------------------------------

    async def on_frame(
        self, frame: agentworker_pb2.OpenControlChannelResponse, write: ControlWriter
    ) -> None:
        prefix, name = _split(frame.rpc_message.type_url)
        if name in ("SaveStateResponse", "LoadStateResponse"):
            self._on_response(frame.rpc_id, name, frame.rpc_message.value)
            return
        if name not in ("SaveStateRequest", "LoadStateRequest"):
            _log.warning("ignoring control message %r", frame.rpc_message.type_url)
            return
        reply = await self._serve(name, frame.rpc_message.value, frame.destination)
        await write(
            ControlFrame(
                rpc_id=frame.rpc_id,
                destination=frame.respond_to if frame.HasField("respond_to") else "",
                rpc_message=_pack(prefix, reply),
            )
        )

    async def _serve(self, name: str, value: bytes, destination: str) -> Message:
        failed = agentworker_pb2.ERROR_CODE_HANDLER_FAILED
        if name == "SaveStateRequest":
            save = agentworker_pb2.SaveStateRequest()
            try:
                save.ParseFromString(value)
                agent_id = self._target(save.agent_id, destination)
                state = await _save(self._lookup(agent_id))
                return agentworker_pb2.SaveStateResponse(state=state)
            except (DecodeError, Exception) as exc:
                _log.info("save state failed: %r", exc)
                return agentworker_pb2.SaveStateResponse(error=_describe(exc), error_code=failed)
        load = agentworker_pb2.LoadStateRequest()
        try:
            load.ParseFromString(value)
            agent_id = self._target(load.agent_id, destination)
            await _load(self._lookup(agent_id), load.state)
            return agentworker_pb2.LoadStateResponse()
        except (DecodeError, Exception) as exc:
            _log.info("load state failed: %r", exc)
            return agentworker_pb2.LoadStateResponse(error=_describe(exc), error_code=failed)

    @staticmethod
    def _target(agent_id: agentworker_pb2.AgentId, destination: str) -> AgentId:
        if agent_id.type:
            return AgentId.from_proto(agent_id)
        found = _agent_from_destination(destination)
        if found is None:
            raise ValueError(f"no agent named in state request (destination {destination!r})")
        return found

    # -- requesting -------------------------------------------------------------------------

    def _on_response(self, rpc_id: str, name: str, value: bytes) -> None:
        future = self._pending.pop(rpc_id, None)
        if future is None or future.done():
            _log.info("discarding control response for unknown rpc_id %r", rpc_id)
            return
        message: StateResponse = (
            agentworker_pb2.SaveStateResponse()
            if name == "SaveStateResponse"
            else agentworker_pb2.LoadStateResponse()
        )
        try:
            message.ParseFromString(value)
        except DecodeError as exc:
            future.set_exception(exc)
            return
        future.set_result(message)

    async def request(
        self, agent_id: AgentId, message: Message, write: ControlWriter, limit: float
    ) -> StateResponse:
        rpc_id = str(next(self._ids))
        future: asyncio.Future[StateResponse] = asyncio.get_running_loop().create_future()
        self._pending[rpc_id] = future
        frame = ControlFrame(
            rpc_id=rpc_id,
            destination=f"agentid={agent_id.type}/{agent_id.key}",
            respond_to=f"clientid={self._client_id}",
            rpc_message=_pack(V1_PREFIX, message),
        )
        try:
            async with asyncio.timeout(limit):
                await write(frame)
                response = await future
        except TimeoutError:
            raise DeadlineExceededError(f"state request for {agent_id} timed out") from None
        finally:
            self._pending.pop(rpc_id, None)
        if response.HasField("error"):
            raise error_for_code(response.error_code, response.error)
        return response

    def fail_all(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


async def _save(agent: Agent) -> str:
    """The agent's state as a string: a mapping travels as a JSON object (AWP-CTL-001)."""
    state: Any = agent.save_state()
    if inspect.isawaitable(state):
        state = await state
    if isinstance(state, str):  # an agent written for the string form
        return state
    if not isinstance(state, Mapping):
        raise TypeError(f"save_state returned {type(state).__name__}, not a mapping")
    return json.dumps(dict(state))


async def _load(agent: Agent, text: str) -> None:
    """Gives the agent the mapping a JSON object state decodes to."""
    loaded = json.loads(text) if text else {}
    if not isinstance(loaded, dict):
        raise ValueError("agent state must be a JSON object")
    result: Any = agent.load_state(loaded)
    if inspect.isawaitable(result):
        await result
