"""The standard conformance agent (spec section 16.2, contract.proto).

Run it under a conformance harness, or against any host::

    AGENTWORKER_HOST_ADDRESS=localhost:50051 python -m reference_worker.conformance_agents

Settings come from the AGENTWORKER_* variables of spec section 16.1. The process prints
``ready`` on standard output once registered, runs until SIGTERM (or SIGINT), then drains
(AWP-CONN-017) and exits with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentworker.conformance.v1 import contract_pb2
from agentworker.v1 import agentworker_pb2
from reference_worker._agent import Agent, MessageContext, handler
from reference_worker._connection import HostConnectionError
from reference_worker._errors import AgentWorkerError
from reference_worker._ids import AgentId, TopicId
from reference_worker._subscriptions import prefix_subscription, type_subscription
from reference_worker._worker import Worker

__all__ = ["AGENT_TYPE", "ConformanceAgent", "Ping", "Pong", "main", "serve"]

AGENT_TYPE = "conformance"
BROADCAST_TOPIC = "conformance.broadcast"
PREFIX = "conformance.prefix."
RECEIPTS_TOPIC = "conformance.receipts"

_log = logging.getLogger("reference_worker.conformance")


_INT32 = range(-(2**31), 2**31)


def _seq(value: object) -> int:
    """Read a JSON seq: an integral number in the int32 range, 7.0 included (AWP-CNF-024)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in _INT32:
        raise ValueError(f"seq must be an int32 integer, got {value!r}")
    return value


@dataclass
class Ping:
    """The JSON encoding of Ping: data_type "Ping" (AWP-CNF-004)."""

    text: str = ""
    seq: int = 0

    def __post_init__(self) -> None:
        self.seq = _seq(self.seq)


@dataclass
class Pong:
    """The JSON encoding of Pong: data_type "Pong" (AWP-CNF-004)."""

    text: str = ""
    seq: int = 0
    agent_key: str = ""

    def __post_init__(self) -> None:
        self.seq = _seq(self.seq)


class CommandDeadlineError(Exception):
    """A command ran past its deadline_ms (AWP-CNF-015)."""


class ConformanceAgent(Agent):
    """Answers Pings, acknowledges Ping events with receipts and runs Commands."""

    def __init__(self) -> None:
        super().__init__()
        self._value = ""

    # -- Ping (AWP-CNF-003, AWP-CNF-005) ----------------------------------------------------

    @handler
    async def on_json_ping(self, message: Ping, ctx: MessageContext) -> Pong | None:
        if ctx.is_rpc:
            return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)
        await self._receipt(message.text, message.seq, contract_pb2.ENCODING_JSON, ctx)
        return None

    @handler
    async def on_proto_ping(
        self, message: contract_pb2.Ping, ctx: MessageContext
    ) -> contract_pb2.Pong | None:
        if ctx.is_rpc:
            return contract_pb2.Pong(text=message.text, seq=message.seq, agent_key=self.id.key)
        if message.stall_ms:  # AWP-CNF-030: the agent's next message waits for this handler
            await asyncio.sleep(message.stall_ms / 1000)
        await self._receipt(message.text, message.seq, contract_pb2.ENCODING_PROTOBUF, ctx)
        return None

    async def _receipt(
        self, text: str, seq: int, encoding: contract_pb2.Encoding, ctx: MessageContext
    ) -> None:
        receipt = contract_pb2.EventReceipt(
            agent_key=self.id.key,
            topic_type=ctx.topic_id.type if ctx.topic_id else "",
            topic_source=ctx.topic_id.source if ctx.topic_id else "",
            text=text,
            seq=seq,
            encoding=encoding,
            event_id=ctx.message_id,
        )
        if ctx.sender is not None:
            receipt.sender.CopyFrom(ctx.sender.to_proto())
        await self.publish(receipt, TopicId(RECEIPTS_TOPIC, self.id.key))

    # -- Command (AWP-CNF-010 .. AWP-CNF-015) ----------------------------------------------

    @handler
    async def on_command(
        self, message: contract_pb2.Command, ctx: MessageContext
    ) -> contract_pb2.CommandResult:
        limit = message.deadline_ms / 1000 if message.deadline_ms else None
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                return await self._run(message)
        except TimeoutError:
            if timer.expired():
                raise CommandDeadlineError(
                    f"command {message.case_id!r} passed its deadline of {message.deadline_ms} ms"
                    " (deadline exceeded)"
                ) from None
            raise

    async def _run(self, command: contract_pb2.Command) -> contract_pb2.CommandResult:
        result = contract_pb2.CommandResult(case_id=command.case_id)
        action = command.WhichOneof("action")
        if action == "publish":
            result.published = await self._publish(command.publish)
        elif action == "call":
            result.call.CopyFrom(await self._call(command.call))
        elif action == "fail":
            raise RuntimeError(command.fail.message or "failed on command")
        elif action == "stall":
            await asyncio.sleep(command.stall.duration_ms / 1000)
            result.stalled_ms = command.stall.duration_ms
        elif action == "remember":
            self._value = command.remember.value
            result.remembered = self._value
        elif action == "recall":
            result.recalled = self._value
        else:
            raise ValueError(f"command {command.case_id!r} has no known action")
        return result

    async def _publish(self, action: contract_pb2.PublishAction) -> int:
        topic = TopicId(action.topic_type, action.topic_source)
        for index in range(action.count):
            seq = action.first_seq + index
            if action.encoding == contract_pb2.ENCODING_PROTOBUF:
                await self.publish(contract_pb2.Ping(text=action.text, seq=seq), topic)
            else:
                await self.publish(Ping(text=action.text, seq=seq), topic)
        return action.count

    async def _call(self, action: contract_pb2.CallAction) -> contract_pb2.CallOutcome:
        target = AgentId(action.target.type, action.target.key)
        ping: object
        if action.encoding == contract_pb2.ENCODING_PROTOBUF:
            ping = contract_pb2.Ping(text=action.ping.text, seq=action.ping.seq)
        else:
            ping = Ping(text=action.ping.text, seq=action.ping.seq)
        timeout = action.timeout_ms / 1000 if action.timeout_ms else None
        try:
            reply = await self.send(ping, target, timeout=timeout)
        except AgentWorkerError as exc:
            return contract_pb2.CallOutcome(error_code=exc.code, error_message=str(exc))
        if isinstance(reply, contract_pb2.Pong):
            return contract_pb2.CallOutcome(pong=reply, encoding=contract_pb2.ENCODING_PROTOBUF)
        if isinstance(reply, Pong):
            pong = contract_pb2.Pong(text=reply.text, seq=reply.seq, agent_key=reply.agent_key)
            return contract_pb2.CallOutcome(pong=pong, encoding=contract_pb2.ENCODING_JSON)
        return contract_pb2.CallOutcome(
            error_code=agentworker_pb2.ERROR_CODE_HANDLER_FAILED,
            error_message=f"unexpected reply type {type(reply).__name__}",
        )

    # -- state (AWP-CNF-014, AWP-CTL-001) -------------------------------------------------

    async def save_state(self) -> Mapping[str, Any]:
        return {"value": self._value}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._value = str(state.get("value", ""))


async def serve(worker: Worker) -> None:
    """Registers the conformance agent on a started or unstarted worker (AWP-CNF-002)."""
    await worker.register(
        AGENT_TYPE,
        ConformanceAgent,
        subscriptions=[type_subscription(BROADCAST_TOPIC), prefix_subscription(PREFIX)],
    )


async def _main() -> int:
    worker = Worker.from_env()
    await serve(worker)
    await worker.start()
    print("ready", flush=True)
    await worker.stop_when_signal(grace=5.0)
    return 0


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("AGENTWORKER_LOG_LEVEL", "WARNING").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(_main())
    except ValueError as exc:  # bad settings
        print(f"conformance_agents: {exc}", file=sys.stderr)
        return 2
    except HostConnectionError as exc:  # the host refused the connection or registration
        print(f"conformance_agents: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
