"""The agentworker conformance agent (spec section 16), written with AutoGen's own API.

    AGENTWORKER_HOST_ADDRESS=HOST:PORT interop/autogen/.venv/bin/python \
        interop/autogen/conformance_adapter.py

Run by the worker conformance suite, which plays the host (AutoGen workers call the legacy
`/agents.AgentRpc/...` service, which the harness serves):

    python -m conformance worker -- \
        interop/autogen/.venv/bin/python interop/autogen/conformance_adapter.py

It registers agent type "conformance" on a `GrpcWorkerAgentRuntime` with a
`TypeSubscription("conformance.broadcast")` and a `TypePrefixSubscription("conformance.prefix.")`,
beside AutoGen's own direct-addressing prefix "conformance:" (added by `register`). The agent:

- answers a Ping RPC (JSON dataclass `Ping` or protobuf `agentworker.conformance.v1.Ping`) with
  a Pong repeating text and seq and giving its key;
- on a Ping event, publishes a protobuf `EventReceipt` on topic type "conformance.receipts"
  with source its own key;
- performs `Command`s (publish, call, fail, stall, remember, recall) within `deadline_ms` and
  answers a `CommandResult`;
- fails an RPC whose payload type it does not know.

What AutoGen 0.7.5 cannot do, this program does not work around (the suite reports it): every
RPC reply is labelled application/json, so a protobuf Ping gets a JSON Pong and a Command gets
a JSON `CommandResult` (data_type "CommandResult", its scalar fields only, so a `CallOutcome`
cannot be carried); an error response has no `error_code`; calls carry no `timeout_ms`; there is
no hello. `AGENTWORKER_CLIENT_ID` cannot be set through AutoGen's API (its connection makes a
fresh UUID), and the TLS and token variables are not read.

A second runtime with `payload_serialization_format` protobuf publishes the protobuf events
(receipts, protobuf Pings) on a second data channel: AutoGen picks the encoding of published
events per runtime, not per message.

It runs until SIGTERM or SIGINT, then stops both runtimes (AutoGen's `stop()` waits for running
handlers) and exits 0. Diagnostics go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autogen_core import (
    PROTOBUF_DATA_CONTENT_TYPE,
    AgentId,
    MessageContext,
    RoutedAgent,
    TopicId,
    TypePrefixSubscription,
    TypeSubscription,
    event,
    rpc,
    try_get_known_serializers_for_type,
)
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime
from interop_common import Ping, Pong, pb

AGENT_TYPE = "conformance"
BROADCAST_TOPIC = "conformance.broadcast"
PREFIX = "conformance.prefix."
RECEIPTS_TOPIC = "conformance.receipts"

log = logging.getLogger("conformance_adapter")


@dataclass
class CommandResult:
    """The JSON form of `agentworker.conformance.v1.CommandResult`: AutoGen encodes every RPC
    reply as JSON, so this is the closest answer it can give. Unset outcomes are null."""

    case_id: str
    published: int | None = None
    stalled_ms: int | None = None
    remembered: str | None = None
    recalled: str | None = None
    call_ok: bool | None = None
    call_text: str | None = None
    call_seq: int | None = None
    call_agent_key: str | None = None
    call_error: str | None = None


class CommandFailed(Exception):
    """A Command that fails; AutoGen sends its text as the error response's `error`."""


class ConformanceAgent(RoutedAgent):
    """The conformance agent of spec 16.2, as far as AutoGen's API allows."""

    protobuf_runtime: GrpcWorkerAgentRuntime | None = None

    def __init__(self) -> None:
        super().__init__("agentworker conformance agent")
        self._value = ""

    # -- RPCs -----------------------------------------------------------------------------

    @rpc
    async def on_ping(self, message: Ping, ctx: MessageContext) -> Pong:
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @rpc
    async def on_protobuf_ping(self, message: pb.Ping, ctx: MessageContext) -> Pong:
        # The spec asks for a protobuf Pong; AutoGen can only encode the reply as JSON, and
        # it cannot serialize a protobuf message as JSON, so a JSON Pong is what it can send.
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @rpc
    async def on_command(self, message: pb.Command, ctx: MessageContext) -> CommandResult:
        deadline_s = message.deadline_ms / 1000 if message.deadline_ms > 0 else 30.0
        try:
            return await asyncio.wait_for(self._perform(message), deadline_s)
        except TimeoutError:
            raise CommandFailed(
                f"command of case {message.case_id!r} passed its deadline of "
                f"{message.deadline_ms} ms"
            ) from None

    async def _perform(self, command: pb.Command) -> CommandResult:
        action = command.WhichOneof("action")
        case_id = command.case_id
        if action == "publish":
            return CommandResult(case_id=case_id, published=await self._publish(command.publish))
        if action == "call":
            return await self._call(case_id, command.call)
        if action == "fail":
            raise CommandFailed(command.fail.message)
        if action == "stall":
            await asyncio.sleep(command.stall.duration_ms / 1000)
            return CommandResult(case_id=case_id, stalled_ms=command.stall.duration_ms)
        if action == "remember":
            self._value = command.remember.value
            return CommandResult(case_id=case_id, remembered=self._value)
        if action == "recall":
            return CommandResult(case_id=case_id, recalled=self._value)
        raise CommandFailed(f"command of case {case_id!r} has no action")

    async def _publish(self, action: pb.PublishAction) -> int:
        topic = TopicId(action.topic_type, action.topic_source)
        seqs = range(action.first_seq, action.first_seq + action.count)
        if action.encoding == pb.ENCODING_PROTOBUF:
            runtime = self._protobuf_runtime()
            for seq in seqs:
                await runtime.publish_message(
                    pb.Ping(text=action.text, seq=seq), topic, sender=self.id
                )
        elif action.encoding == pb.ENCODING_JSON:
            for seq in seqs:
                await self.publish_message(Ping(text=action.text, seq=seq), topic)
        else:
            raise CommandFailed(f"unknown encoding {action.encoding}")
        return action.count

    async def _call(self, case_id: str, action: pb.CallAction) -> CommandResult:
        target = AgentId(action.target.type, action.target.key)
        # AutoGen cannot send a protobuf request (it labels every RPC payload JSON) nor put a
        # timeout on the wire; the limit is applied locally.
        request = Ping(text=action.ping.text, seq=action.ping.seq)
        timeout_s = action.timeout_ms / 1000 if action.timeout_ms > 0 else 30.0
        try:
            reply: Any = await asyncio.wait_for(self.send_message(request, target), timeout_s)
        except TimeoutError:
            return CommandResult(
                case_id=case_id, call_ok=False, call_error=f"no reply within {timeout_s} s"
            )
        except Exception as exc:  # AutoGen raises a bare Exception carrying the error text
            return CommandResult(case_id=case_id, call_ok=False, call_error=str(exc))
        if isinstance(reply, (Pong, pb.Pong)):
            return CommandResult(
                case_id=case_id,
                call_ok=True,
                call_text=reply.text,
                call_seq=reply.seq,
                call_agent_key=reply.agent_key,
            )
        return CommandResult(
            case_id=case_id, call_ok=False, call_error=f"reply is not a Pong: {reply!r}"[:500]
        )

    # -- events ---------------------------------------------------------------------------

    @event
    async def on_ping_event(self, message: Ping, ctx: MessageContext) -> None:
        await self._receipt(message.text, message.seq, pb.ENCODING_JSON, ctx)

    @event
    async def on_protobuf_ping_event(self, message: pb.Ping, ctx: MessageContext) -> None:
        if message.stall_ms:  # holds this agent's later messages back (AWP-CNF-030)
            await asyncio.sleep(message.stall_ms / 1000)
        await self._receipt(message.text, message.seq, pb.ENCODING_PROTOBUF, ctx)

    async def _receipt(self, text: str, seq: int, encoding: int, ctx: MessageContext) -> None:
        topic = ctx.topic_id
        receipt = pb.EventReceipt(
            agent_key=self.id.key,
            topic_type=topic.type if topic else "",
            topic_source=topic.source if topic else "",
            text=text,
            seq=seq,
            encoding=encoding,  # type: ignore[arg-type]
            event_id=ctx.message_id,
        )
        if ctx.sender is not None:
            receipt.sender.type = ctx.sender.type
            receipt.sender.key = ctx.sender.key
        await self._protobuf_runtime().publish_message(
            receipt, TopicId(RECEIPTS_TOPIC, self.id.key), sender=self.id
        )

    # -- anything else --------------------------------------------------------------------

    async def on_unhandled_message(self, message: Any, ctx: MessageContext) -> None:
        # The spec asks for ERROR_CODE_UNSUPPORTED_MESSAGE; AutoGen's error response carries
        # only the text, so raising is as close as it gets. Events are only logged.
        if ctx.is_rpc:
            raise CommandFailed(f"unsupported message {type(message).__name__}: {message!r}"[:500])
        log.info("unhandled event %r", message)

    # -- state ----------------------------------------------------------------------------

    async def save_state(self) -> Mapping[str, Any]:
        return {"value": self._value}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        self._value = str(state.get("value", ""))

    def _protobuf_runtime(self) -> GrpcWorkerAgentRuntime:
        if ConformanceAgent.protobuf_runtime is None:
            raise CommandFailed("this worker has no protobuf publisher")
        return ConformanceAgent.protobuf_runtime


def add_serializers(runtime: GrpcWorkerAgentRuntime) -> None:
    """Every class the agent receives, sends or decodes as a reply."""
    for cls in (
        Ping,
        Pong,
        CommandResult,
        pb.Ping,
        pb.Pong,
        pb.Command,
        pb.CommandResult,
        pb.EventReceipt,
    ):
        runtime.add_message_serializer(try_get_known_serializers_for_type(cls))


async def run(address: str) -> int:
    runtime = GrpcWorkerAgentRuntime(host_address=address)
    publisher = GrpcWorkerAgentRuntime(
        host_address=address, payload_serialization_format=PROTOBUF_DATA_CONTENT_TYPE
    )
    # The protobuf publisher connects first: the harness drives the worker's latest data
    # channel, which must be the one the agent is registered on.
    await publisher.start()
    await runtime.start()
    add_serializers(runtime)
    add_serializers(publisher)
    ConformanceAgent.protobuf_runtime = publisher

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await ConformanceAgent.register(
            runtime, AGENT_TYPE, ConformanceAgent, skip_class_subscriptions=True
        )
        await runtime.add_subscription(
            TypeSubscription(topic_type=BROADCAST_TOPIC, agent_type=AGENT_TYPE)
        )
        await runtime.add_subscription(
            TypePrefixSubscription(topic_type_prefix=PREFIX, agent_type=AGENT_TYPE)
        )
        log.info("conformance agent registered on %s", address)
        await stopped.wait()
    finally:
        await publisher.stop()
        await runtime.stop()
    return 0


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("AUTOGEN_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr
    )
    address = os.environ.get("AGENTWORKER_HOST_ADDRESS")
    if not address:
        print("conformance_adapter: AGENTWORKER_HOST_ADDRESS is not set", file=sys.stderr)
        return 2
    if os.environ.get("AGENTWORKER_CLIENT_ID"):
        log.warning("AGENTWORKER_CLIENT_ID is ignored: AutoGen always uses a fresh client-id")
    return asyncio.run(run(address))


if __name__ == "__main__":
    sys.exit(main())
