"""An AutoGen worker whose agent answers RPCs and publishes and receives JSON and protobuf events.

It registers one agent type (`--agent-type`) on a `GrpcWorkerAgentRuntime`, with a
TypeSubscription for each `--topic-type` and a TypePrefixSubscription for each `--topic-prefix`
(besides AutoGen's own direct-addressing prefix "<type>:"). Its agents handle, as RPCs:

    Ping (JSON) or agentworker.conformance.v1.Ping (protobuf)  -> Pong (JSON)
    Stall(seconds)                                              -> Pong after the wait
    Rendezvous(group, parties)   waits for `parties` calls of the group -> Pong
    Fail(message)                                               -> error `message`
    Nothing                                                     -> None (AutoGen sends no reply)
    PublishRequest(topic, count, encoding)  publishes `count` Pings -> Published
    CallRequest(target, text, seq)          calls target with a Ping -> CallResult

and, as events, JSON and protobuf Pings, each reported on stdout. AutoGen always labels RPC
payloads application/json, so a protobuf request is answered with a JSON Pong; and one
runtime publishes in one encoding only, so protobuf events are published through a second
runtime (its own connection, with the agent named as sender).

Every line on stdout is a JSON object with an "event" member:

    {"event": "ready", "agent_type": ..., "subscriptions": [...]}
    {"event": "received", "agent": [type, key], "topic": [type, source], "sender": [t, k] | null,
     "message_id": ..., "type": ..., "encoding": "json" | "protobuf", "body": {...}}
    {"event": "rpc", "agent": [type, key], "sender": [t, k] | null, "type": ..., "body": {...}}
    {"event": "stalling", "agent": [type, key], "seconds": ..., "text": ...}
    {"event": "published", "agent": [...], "topic": [...], "count": ..., "encoding": ...}
    {"event": "called", "agent": [...], "target": [...], "result": {...}}
    {"event": "stopped", "reason": ...}

Usage (with interop/autogen/.venv/bin/python):

    mixed_worker.py --host 127.0.0.1:50051 --agent-type ag_mixed \
        [--topic-type interop.chat]... [--topic-prefix interop.prefix.]... [--stdin-lifeline]
        [--quiet]

It runs until SIGTERM or SIGINT (or, with --stdin-lifeline, until its stdin closes), then
stops its runtimes and exits 0. A registration the host refuses exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import grpc
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
)
from autogen_ext.runtimes.grpc import GrpcWorkerAgentRuntime
from interop_common import (
    CallRequest,
    CallResult,
    Fail,
    Nothing,
    Ping,
    Pong,
    Published,
    PublishRequest,
    Rendezvous,
    Stall,
    add_serializers,
    agent_id_json,
    describe,
    emit,
    pb,
    run_until_stopped,
    topic_json,
)


class MixedAgent(RoutedAgent):
    """Answers Ping, Stall, Fail, PublishRequest and CallRequest; reports Ping events."""

    protobuf_publisher: GrpcWorkerAgentRuntime | None = None
    quiet = False  # no "rpc" and "received" lines (for measurements)

    def __init__(self) -> None:
        super().__init__("agentworker interop agent")
        self._groups: dict[str, tuple[list[int], asyncio.Event]] = {}

    def _rpc_seen(self, message: object, ctx: MessageContext) -> None:
        if MixedAgent.quiet:
            return
        emit(
            "rpc",
            agent=agent_id_json(self.id),
            sender=agent_id_json(ctx.sender),
            request_id=ctx.message_id,
            **describe(message),
        )

    @rpc
    async def on_ping(self, message: Ping, ctx: MessageContext) -> Pong:
        self._rpc_seen(message, ctx)
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @rpc
    async def on_protobuf_ping(self, message: pb.Ping, ctx: MessageContext) -> Pong:
        # AutoGen encodes every RPC reply as JSON, so a protobuf Ping gets a JSON Pong.
        self._rpc_seen(message, ctx)
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @rpc
    async def on_stall(self, message: Stall, ctx: MessageContext) -> Pong:
        emit("stalling", agent=agent_id_json(self.id), seconds=message.seconds, text=message.text)
        await asyncio.sleep(message.seconds)
        return Pong(text=message.text, seq=0, agent_key=self.id.key)

    @rpc
    async def on_rendezvous(self, message: Rendezvous, ctx: MessageContext) -> Pong:
        self._rpc_seen(message, ctx)
        arrived, everyone = self._groups.setdefault(message.group, ([0], asyncio.Event()))
        arrived[0] += 1
        if arrived[0] >= message.parties:
            everyone.set()
        try:
            await asyncio.wait_for(everyone.wait(), message.timeout)
        except TimeoutError:
            raise RuntimeError(
                f"rendezvous {message.group!r}: {arrived[0]} of {message.parties} calls came"
            ) from None
        return Pong(text=message.text, seq=message.seq, agent_key=self.id.key)

    @rpc
    async def on_fail(self, message: Fail, ctx: MessageContext) -> Pong:
        self._rpc_seen(message, ctx)
        raise RuntimeError(message.message)

    @rpc
    async def on_nothing(self, message: Nothing, ctx: MessageContext) -> None:
        self._rpc_seen(message, ctx)

    @rpc
    async def on_publish_request(self, message: PublishRequest, ctx: MessageContext) -> Published:
        self._rpc_seen(message, ctx)
        topic = TopicId(message.topic_type, message.topic_source)
        for seq in range(message.first_seq, message.first_seq + message.count):
            if message.encoding == "protobuf":
                publisher = MixedAgent.protobuf_publisher
                if publisher is None:
                    raise RuntimeError("this worker has no protobuf publisher")
                await publisher.publish_message(
                    pb.Ping(text=message.text, seq=seq), topic, sender=self.id
                )
            elif message.encoding == "json":
                await self.publish_message(Ping(text=message.text, seq=seq), topic)
            else:
                raise ValueError(f"unknown encoding {message.encoding!r}")
        emit(
            "published",
            agent=agent_id_json(self.id),
            topic=topic_json(topic),
            count=message.count,
            encoding=message.encoding,
        )
        return Published(count=message.count, encoding=message.encoding)

    @rpc
    async def on_call_request(self, message: CallRequest, ctx: MessageContext) -> CallResult:
        self._rpc_seen(message, ctx)
        target = AgentId(message.target_type, message.target_key)
        try:
            reply = await asyncio.wait_for(
                self.send_message(Ping(text=message.text, seq=message.seq), target),
                message.timeout,
            )
        except TimeoutError:
            result = CallResult(ok=False, error=f"no reply within {message.timeout} s")
        except Exception as exc:  # AutoGen raises a bare Exception carrying the error string
            result = CallResult(ok=False, error=str(exc))
        else:
            result = pong_result(reply)
        emit(
            "called",
            agent=agent_id_json(self.id),
            target=[target.type, target.key],
            result=vars(result),
        )
        return result

    @event
    async def on_ping_event(self, message: Ping, ctx: MessageContext) -> None:
        self._event_seen(message, ctx)

    @event
    async def on_protobuf_ping_event(self, message: pb.Ping, ctx: MessageContext) -> None:
        self._event_seen(message, ctx)

    def _event_seen(self, message: object, ctx: MessageContext) -> None:
        if MixedAgent.quiet:
            return
        emit(
            "received",
            agent=agent_id_json(self.id),
            topic=topic_json(ctx.topic_id),
            sender=agent_id_json(ctx.sender),
            message_id=ctx.message_id,
            **describe(message),
        )


def pong_result(reply: Any) -> CallResult:
    """A CallResult for the reply to a Ping: a JSON Pong, a protobuf Pong or something else."""
    if isinstance(reply, (Pong, pb.Pong)):
        kind = "Pong" if isinstance(reply, Pong) else reply.DESCRIPTOR.full_name
        return CallResult(
            ok=True, text=reply.text, seq=reply.seq, agent_key=reply.agent_key, reply_type=kind
        )
    return CallResult(ok=False, error=f"unexpected reply {describe(reply)}")


async def main(args: argparse.Namespace) -> int:
    runtime = GrpcWorkerAgentRuntime(host_address=args.host)
    publisher = GrpcWorkerAgentRuntime(
        host_address=args.host, payload_serialization_format=PROTOBUF_DATA_CONTENT_TYPE
    )
    await runtime.start()
    await publisher.start()
    add_serializers(runtime)
    add_serializers(publisher)
    MixedAgent.protobuf_publisher = publisher
    MixedAgent.quiet = args.quiet
    try:
        try:
            await MixedAgent.register(
                runtime, args.agent_type, MixedAgent, skip_class_subscriptions=True
            )
            subscriptions: list[TypeSubscription | TypePrefixSubscription] = [
                TypeSubscription(topic_type=t, agent_type=args.agent_type) for t in args.topic_type
            ]
            subscriptions += [
                TypePrefixSubscription(topic_type_prefix=p, agent_type=args.agent_type)
                for p in args.topic_prefix
            ]
            for subscription in subscriptions:
                await runtime.add_subscription(subscription)
        except grpc.aio.AioRpcError as exc:
            emit("refused", agent_type=args.agent_type, code=exc.code().name, details=exc.details())
            return 2
        emit(
            "ready",
            agent_type=args.agent_type,
            subscriptions=[
                {
                    "id": s.id,
                    "type": type(s).__name__,
                    "topic": getattr(s, "topic_type", None) or getattr(s, "topic_type_prefix", ""),
                }
                for s in subscriptions
            ],
        )
        reason = await run_until_stopped(stdin_lifeline=args.stdin_lifeline)
    finally:
        await publisher.stop()
        await runtime.stop()
    emit("stopped", reason=reason)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost:50051", help="host address HOST:PORT")
    parser.add_argument("--agent-type", default="ag_mixed", help="agent type to register")
    parser.add_argument(
        "--topic-type", action="append", default=[], help="add a TypeSubscription (repeatable)"
    )
    parser.add_argument(
        "--topic-prefix",
        action="append",
        default=[],
        help="add a TypePrefixSubscription (repeatable)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not report each RPC and event on stdout"
    )
    parser.add_argument(
        "--stdin-lifeline", action="store_true", help="also stop when stdin reaches end of file"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
