"""Worker mutants: the reference worker's conformance agents with one MUST broken, each by a
test-side patch applied before the worker starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from google.protobuf import any_pb2

from agentworker.v1 import agentworker_pb2 as pb
from tests.conformance.mutants._hooks import replace, worker_inbound, worker_outbound
from tests.conformance.mutants._registry import mutant

__all__: list[str] = []

Frames = list[Any]
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def _worker(
    name: str, requirement: str, summary: str, *catches: str, claims: tuple[str, ...] = ()
) -> Callable[[Callable[[], None]], Callable[[], None]]:
    return mutant("worker", name, requirement, summary, catches=catches, claims=claims)


def _responses(change: Callable[[pb.RpcResponse], None]) -> None:
    """Apply ``change`` to every response the worker sends."""

    def rewrite(frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "response":
            change(frame.response)
        return [frame]

    worker_outbound(rewrite)


def _events(change: Callable[[Any], None]) -> None:
    """Apply ``change`` to every CloudEvent the worker publishes."""

    def rewrite(frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            change(frame.cloud_event)
        return [frame]

    worker_outbound(rewrite)


def _recode(old: int, new: int) -> None:
    def change(response: pb.RpcResponse) -> None:
        if response.error_code == old:
            response.error_code = new  # type: ignore[assignment]

    _responses(change)


def _agent_method(name: str, make: Callable[[Any], Any]) -> None:
    """Replace a method of the conformance agent. The replacement takes the original's name,
    type hints and handler mark (functools.wraps), so that a replaced handler still handles
    its message type instead of hiding the original one."""
    import functools

    from reference_worker import conformance_agents

    def wrapped(original: Any) -> Any:
        return functools.wraps(original)(make(original))

    replace(conformance_agents.ConformanceAgent, name, wrapped)


def _run_action(action: str, run: Callable[[Any, Any, Any], Any]) -> None:
    """Run ``run(agent, command, original)`` for Commands whose action is ``action``."""

    def make(original: Any) -> Any:
        async def _run(self: Any, command: Any) -> Any:
            if command.WhichOneof("action") == action:
                return await run(self, command, original)
            return await original(self, command)

        return _run

    _agent_method("_run", make)


# -- batching ----------------------------------------------------------------------------


@_worker(
    "batch-without-welcome",
    "AWP-BAT-001",
    "batches its frames whether or not batching is in force",
    "worker/handshake/legacy-host",
)
def _bat_001() -> None:
    from reference_worker import _writer

    _writer.FrameWriter.batching = property(  # type: ignore[assignment]
        lambda self: True, lambda self, value: None
    )


@_worker(
    "nested-batches",
    "AWP-BAT-002",
    "wraps each batch it sends in another batch",
    "worker/batching/accepts-batches",
)
def _bat_002() -> None:
    from reference_worker import _writer

    class Nesting:
        def __init__(self, call: Any) -> None:
            self._call = call

        async def write(self, frame: pb.OpenChannelRequest) -> None:
            if frame.WhichOneof("message") == "batch":
                outer = pb.OpenChannelRequest()
                outer.batch.messages.append(frame)
                frame = outer
            await self._call.write(frame)

        async def done_writing(self) -> None:
            await self._call.done_writing()

    def make(original: Any) -> Any:
        def init(self: Any, call: Any, **kwargs: Any) -> None:
            original(self, Nesting(call), **kwargs)

        return init

    replace(_writer.FrameWriter, "__init__", make)


@_worker(
    "reverse-batch",
    "AWP-BAT-003",
    "handles the frames of a batch in reverse order",
    "worker/batching/accepts-batches",
)
def _bat_003() -> None:
    def reverse(frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "batch":
            out = pb.OpenChannelResponse()
            out.batch.messages.extend(reversed(frame.batch.messages))
            return [out]
        return [frame]

    worker_inbound(reverse)


# -- the conformance agent ---------------------------------------------------------------


@_worker(
    "ignore-tls-ca-variable",
    "AWP-CNF-001",
    "ignores AGENTWORKER_TLS_CA and connects in plaintext",
    "worker/security/tls",
    claims=("TLS",),
)
def _cnf_001() -> None:
    from reference_worker import _config, _worker

    def make(original: Any) -> Any:
        def settings(environ: Any = None) -> Any:
            read = original(environ)
            return _config.EnvSettings(read.host_address, read.client_id, None, read.token)

        return settings

    replace(_worker, "settings_from_env", make)


@_worker(
    "no-prefix-subscription",
    "AWP-CNF-002",
    "registers the conformance agent without its conformance.prefix. subscription",
    "worker/registration/conformance-agent",
    "worker/events/prefix-topic",
)
def _cnf_002() -> None:
    from reference_worker import conformance_agents
    from reference_worker._subscriptions import type_subscription

    async def serve(worker: Any) -> None:
        await worker.register(
            conformance_agents.AGENT_TYPE,
            conformance_agents.ConformanceAgent,
            subscriptions=[type_subscription(conformance_agents.BROADCAST_TOPIC)],
        )

    replace(conformance_agents, "serve", lambda original: serve)


@_worker(
    "pong-seq-off-by-one",
    "AWP-CNF-003",
    "answers a protobuf Ping with a Pong whose seq is one more",
    "worker/rpc/ping/protobuf",
)
def _cnf_003() -> None:
    def make(original: Any) -> Any:
        async def on_proto_ping(self: Any, message: Any, ctx: Any) -> Any:
            reply = await original(self, message, ctx)
            if reply is not None:
                reply.seq += 1
            return reply

        return on_proto_ping

    _agent_method("on_proto_ping", make)


@_worker(
    "json-pong-renamed",
    "AWP-CNF-004",
    "names its JSON Pong data_type `PongMessage`",
    "worker/rpc/ping/json",
)
def _cnf_004() -> None:
    def change(response: pb.RpcResponse) -> None:
        if response.payload.data_type == "Pong":
            response.payload.data_type = "PongMessage"

    _responses(change)


@_worker(
    "receipt-on-shared-source",
    "AWP-CNF-005",
    "publishes its EventReceipts with source `receipts`, not its own key",
    "worker/events/broadcast/json",
    "worker/events/broadcast/protobuf",
)
def _cnf_005() -> None:
    from reference_worker import conformance_agents
    from reference_worker._ids import TopicId

    def make(original: Any) -> Any:
        async def publish(self: Any, message: Any, topic: Any) -> None:
            if topic.type == conformance_agents.RECEIPTS_TOPIC:
                topic = TopicId(topic.type, "receipts")
            await original(self, message, topic)

        return publish

    _agent_method("publish", make)


@_worker(
    "unsupported-as-handler-failure",
    "AWP-CNF-006",
    "answers an RPC whose payload is not a Ping with HANDLER_FAILED",
    "worker/rpc/unsupported-payload",
)
def _cnf_006() -> None:
    _recode(pb.ERROR_CODE_UNSUPPORTED_MESSAGE, pb.ERROR_CODE_HANDLER_FAILED)


@_worker(
    "publish-one-short",
    "AWP-CNF-010",
    "publishes one Ping fewer than Command.publish asks for",
    "worker/publish/envelope/json",
)
def _cnf_010() -> None:
    async def run(agent: Any, command: Any, original: Any) -> Any:
        command.publish.count -= 1
        result = await original(agent, command)
        result.published += 1
        return result

    _run_action("publish", run)


@_worker(
    "non-pong-reply-as-success",
    "AWP-CNF-011",
    "reports a call's reply that is not a Pong as an empty Pong",
    "worker/call/reply-not-a-pong",
)
def _cnf_011() -> None:
    from agentworker.conformance.v1 import contract_pb2

    def make(original: Any) -> Any:
        async def call(self: Any, action: Any) -> Any:
            outcome = await original(self, action)
            if outcome.error_message.startswith("unexpected reply type"):
                return contract_pb2.CallOutcome(pong=contract_pb2.Pong())
            return outcome

        return call

    _agent_method("_call", make)


@_worker(
    "fail-with-fixed-message",
    "AWP-CNF-012",
    "fails Command.fail with a fixed message instead of the one given",
    "worker/rpc/handler-failure",
)
def _cnf_012() -> None:
    async def run(agent: Any, command: Any, original: Any) -> Any:
        raise RuntimeError("command failed")

    _run_action("fail", run)


@_worker(
    "stall-reports-zero",
    "AWP-CNF-013",
    "answers Command.stall with stalled_ms 0",
    "worker/rpc/command-deadline",
)
def _cnf_013() -> None:
    async def run(agent: Any, command: Any, original: Any) -> Any:
        result = await original(agent, command)
        result.stalled_ms = 0
        return result

    _run_action("stall", run)


@_worker(
    "recall-forgets",
    "AWP-CNF-014",
    "answers Command.recall with an empty value",
    "worker/rpc/agent-instance-per-key",
)
def _cnf_014() -> None:
    async def run(agent: Any, command: Any, original: Any) -> Any:
        result = await original(agent, command)
        result.recalled = ""
        return result

    _run_action("recall", run)


@_worker(
    "command-ignores-deadline",
    "AWP-CNF-015",
    "runs a command past its deadline_ms",
    "worker/rpc/command-deadline",
)
def _cnf_015() -> None:
    def make(original: Any) -> Any:
        async def on_command(self: Any, message: Any, ctx: Any) -> Any:
            message.deadline_ms = 0
            return await original(self, message, ctx)

        return on_command

    _agent_method("on_command", make)


# -- connections -------------------------------------------------------------------------


@_worker(
    "legacy-service-path",
    "AWP-CONN-001",
    "calls the legacy /agents.AgentRpc/ paths of a v1 host",
    "worker/handshake/hello",
)
def _conn_001() -> None:
    from reference_worker import _worker

    def make(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["service"] = "agents.AgentRpc"
            original(self, *args, **kwargs)

        return init

    replace(_worker.Worker, "__init__", make)


@_worker(
    "control-channel-without-client-id",
    "AWP-CONN-002",
    "opens its control channel without client-id metadata",
    "worker/handshake/client-id-on-every-call",
)
def _conn_002() -> None:
    from reference_worker import _stub

    def make(original: Any) -> Any:
        def init(self: Any, channel: Any, *args: Any) -> None:
            original(self, channel, *args)
            control = self.OpenControlChannel

            def open_control(*, metadata: Any, **kwargs: Any) -> Any:
                kept = [item for item in metadata if item[0] != "client-id"]
                return control(metadata=kept, **kwargs)

            self.OpenControlChannel = open_control

        return init

    replace(_stub.AgentRpcStub, "__init__", make)


@_worker(
    "one-mib-limit",
    "AWP-CONN-003",
    "accepts frames of at most 1 MiB",
    "worker/robustness/four-mib-ping",
)
def _conn_003() -> None:
    from reference_worker import _connection

    replace(_connection, "MAX_MESSAGE_BYTES", lambda original: 1024 * 1024)


@_worker(
    "register-before-channel",
    "AWP-CONN-007",
    "calls RegisterAgent two seconds before it opens its data channel",
    "worker/handshake/channel-before-registration",
)
def _conn_007() -> None:
    import grpc

    from reference_worker import _stub, _supervisor

    pending: list[Any] = []

    def make(original: Any) -> Any:
        async def connect(self: Any, index: int) -> None:
            if not self.connections and not pending:
                settings = self._settings(self.addresses[index])
                channel = grpc.aio.insecure_channel(settings.address)
                stub = _stub.AgentRpcStub(channel, settings.service)
                call = stub.RegisterAgent(
                    pb.RegisterAgentRequest(type="conformance"),
                    metadata=[("client-id", settings.client_id)],
                )
                pending.append((channel, asyncio.ensure_future(call)))
                # Long enough to show on a busy machine; the host holds it up to 5 s.
                await asyncio.sleep(2.0)
            await original(self, index)

        return connect

    replace(_supervisor.Supervisor, "_connect", make)


@_worker(
    "empty-frame-after-response",
    "AWP-CONN-010",
    "follows each response with a frame that has no case set",
    "worker/robustness/unknown-fields-and-cases",
)
def _conn_010() -> None:
    from reference_worker import _writer

    # Unbatched, so that the empty frame is a frame of its own (not a batch's member).
    _writer.FrameWriter.batching = property(  # type: ignore[assignment]
        lambda self: False, lambda self, value: None
    )

    def add_empty(frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "response":
            return [frame, pb.OpenChannelRequest()]
        return [frame]

    worker_outbound(add_empty)


@_worker(
    "swap-published-pairs",
    "AWP-CONN-011",
    "sends each pair of consecutive events it publishes swapped",
    "worker/publish/envelope/protobuf",
    "worker/events/order-per-agent",
)
def _conn_011() -> None:
    held: list[pb.OpenChannelRequest] = []

    def swap(frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") != "cloud_event":
            return [frame]
        if held:
            return [frame, held.pop()]
        held.append(frame)
        return []

    worker_outbound(swap)


@_worker(
    "close-on-unknown-case",
    "AWP-CONN-013",
    "closes its channel on a frame with no known case",
    "worker/robustness/unknown-fields-and-cases",
)
def _conn_013() -> None:
    from reference_worker import _inbound

    def make(original: Any) -> Any:
        async def on_frame(self: Any, conn: Any, frame: Any) -> None:
            if frame.WhichOneof("message") is None:
                await conn.abort()
                return
            await original(self, conn, frame)

        return on_frame

    replace(_inbound.Inbound, "on_frame", make)


@_worker(
    "exit-quietly-on-broken-stream",
    "AWP-CONN-014",
    "exits with status 0 when its data channel breaks",
    "worker/robustness/garbage-bytes",
)
def _conn_014() -> None:
    import os

    from reference_worker import _worker

    def make(original: Any) -> Any:
        def on_lost(self: Any, conn: Any) -> None:
            if not self._supervisor._stopping.is_set():
                os._exit(0)
            original(self, conn)

        return on_lost

    replace(_worker.Worker, "_on_lost", make)


@_worker(
    "sigterm-cancels-handlers",
    "AWP-CONN-017",
    "on SIGTERM cancels its running handlers at once",
    "worker/lifecycle/sigterm-drains",
)
def _conn_017() -> None:
    from reference_worker import _worker

    def make(original: Any) -> Any:
        async def stop(self: Any, grace: float = 5.0) -> None:
            await original(self, 0.0)

        return stop

    replace(_worker.Worker, "stop", make)


@_worker(
    "reconnect-without-subscriptions",
    "AWP-CONN-020",
    "after a reconnect registers its types again but not its subscriptions",
    "worker/lifecycle/reconnect",
)
def _conn_020() -> None:
    from reference_worker import _registration, _worker

    def make(original: Any) -> Any:
        async def on_connected(self: Any, conn: Any) -> None:
            if not self._supervisor.connections:
                await original(self, conn)
                return
            await _registration.announce(conn, list(self._registry.factories), [])

        return on_connected

    replace(_worker.Worker, "_on_connected", make)


@_worker(
    "already-exists-is-final",
    "AWP-CONN-021",
    "gives up reconnecting when OpenChannel fails with ALREADY_EXISTS",
    "worker/lifecycle/reconnect",
)
def _conn_021() -> None:
    import grpc

    from reference_worker import _supervisor
    from reference_worker._connection import HostConnectionError

    def make(original: Any) -> Any:
        async def connect(self: Any, index: int) -> None:
            try:
                await original(self, index)
            except HostConnectionError as exc:
                if exc.code is grpc.StatusCode.ALREADY_EXISTS:
                    self._stopping.set()
                raise

        return connect

    replace(_supervisor.Supervisor, "_connect", make)


@_worker(
    "draining-answers-handler-failed",
    "AWP-CONN-023",
    "while draining answers new requests with HANDLER_FAILED, not SHUTTING_DOWN",
    "worker/lifecycle/sigterm-drains",
)
def _conn_023() -> None:
    _recode(pb.ERROR_CODE_SHUTTING_DOWN, pb.ERROR_CODE_HANDLER_FAILED)


# -- state -------------------------------------------------------------------------------


@_worker(
    "save-empty-state",
    "AWP-CTL-001",
    "answers SaveStateRequest with an empty state",
    "worker/state/save-load",
    "worker/state/legacy-type-urls",
)
def _ctl_001() -> None:
    async def save_state(self: Any) -> dict[str, Any]:
        return {}

    _agent_method("save_state", lambda original: save_state)


@_worker(
    "answer-in-v1-type-urls",
    "AWP-CTL-002",
    "answers legacy state requests with v1 type URLs",
    "worker/state/legacy-type-urls",
)
def _ctl_002() -> None:
    from reference_worker import _control

    replace(_control, "_pack", lambda original: lambda prefix, message: original("", message))


def _control_replies(change: Callable[[Any], None]) -> None:
    """Apply ``change`` to every control frame the worker writes."""
    from reference_worker import _connection

    def make(original: Any) -> Any:
        async def write_control(self: Any, frame: Any) -> None:
            change(frame)
            await original(self, frame)

        return write_control

    replace(_connection.Connection, "write_control", make)


@_worker(
    "state-reply-new-rpc-id",
    "AWP-CTL-003",
    "answers a state request under an rpc_id of its own",
    "worker/state/save-load",
)
def _ctl_003() -> None:
    def change(frame: Any) -> None:
        if frame.rpc_message.type_url.endswith("Response"):
            frame.rpc_id += "-reply"

    _control_replies(change)


@_worker(
    "unknown-agent-state-unknown-target",
    "AWP-CTL-005",
    "answers a state request for an agent it cannot serve with UNKNOWN_TARGET",
    "worker/state/unknown-agent",
)
def _ctl_005() -> None:
    def change(frame: Any) -> None:
        url = frame.rpc_message.type_url
        for message in (pb.SaveStateResponse(), pb.LoadStateResponse()):
            if url.endswith("." + type(message).__name__):
                message.ParseFromString(frame.rpc_message.value)
                if message.error_code == pb.ERROR_CODE_HANDLER_FAILED:
                    message.error_code = pb.ERROR_CODE_UNKNOWN_TARGET
                frame.rpc_message.value = message.SerializeToString()

    _control_replies(change)


# -- errors ------------------------------------------------------------------------------


def _error_for_code(remap: Callable[[int], int]) -> None:
    from reference_worker import _worker

    replace(
        _worker,
        "error_for_code",
        lambda original: lambda code, message: original(remap(code), message),
    )


@_worker(
    "unknown-target-read-as-unavailable",
    "AWP-ERR-001",
    "reads an UNKNOWN_TARGET answer as TARGET_UNAVAILABLE",
    "worker/call/error-code-surfaced",
)
def _err_001() -> None:
    _error_for_code(
        lambda code: (
            pb.ERROR_CODE_TARGET_UNAVAILABLE if code == pb.ERROR_CODE_UNKNOWN_TARGET else code
        )
    )


@_worker(
    "empty-error-text",
    "AWP-ERR-002",
    "sends error responses with an empty error text",
    "worker/rpc/unsupported-payload",
)
def _err_002() -> None:
    def change(response: pb.RpcResponse) -> None:
        if response.error_code:
            response.error = ""

    _responses(change)


@_worker(
    "legacy-error-as-unknown-target",
    "AWP-ERR-003",
    "reads an error with no error_code as UNKNOWN_TARGET",
    "worker/call/legacy-error",
)
def _err_003() -> None:
    _error_for_code(lambda code: code or pb.ERROR_CODE_UNKNOWN_TARGET)


@_worker(
    "notice-is-fatal",
    "AWP-ERR-011",
    "drops its connection on any Notice",
    "worker/robustness/notice-and-future-enum",
)
def _err_011() -> None:
    from reference_worker import _inbound

    aborting: set[Any] = set()

    def make(original: Any) -> Any:
        def on_notice(self: Any, notice: Any) -> None:
            original(self, notice)
            conn = self._runtime.connection
            if conn is not None:
                task = asyncio.ensure_future(conn.abort())
                aborting.add(task)
                task.add_done_callback(aborting.discard)

        return on_notice

    replace(_inbound.Inbound, "_on_notice", make)


# -- tracing, publishing, payloads -------------------------------------------------------


@_worker(
    "drop-trace-context",
    "AWP-OBS-004",
    "sends no traceparent with the calls and events its handlers make",
    "worker/trace/propagates-traceparent",
)
def _obs_004() -> None:
    def strip(frame: pb.OpenChannelRequest) -> Frames:
        case = frame.WhichOneof("message")
        if case == "request":
            frame.request.metadata.pop("traceparent", None)
            frame.request.metadata.pop("tracestate", None)
        elif case == "cloud_event":
            attributes = frame.cloud_event.attributes
            for name in ("traceparent", "tracestate"):
                if name in attributes:
                    del attributes[name]
        return [frame]

    worker_outbound(strip)


@_worker(
    "wrong-spec-version",
    "AWP-PUB-001",
    "publishes CloudEvents with spec_version 1.1",
    "worker/publish/envelope/json",
    "worker/publish/envelope/protobuf",
)
def _pub_001() -> None:
    def change(event: Any) -> None:
        event.spec_version = "1.1"

    _events(change)


@_worker(
    "camel-case-attribute",
    "AWP-PUB-002",
    "publishes the datacontenttype attribute as `dataContentType`",
    "worker/publish/envelope/json",
)
def _pub_002() -> None:
    def change(event: Any) -> None:
        attributes = event.attributes
        if "datacontenttype" in attributes:
            attributes["dataContentType"].CopyFrom(attributes["datacontenttype"])
            del attributes["datacontenttype"]

    _events(change)


@_worker(
    "string-attributes-only",
    "AWP-PUB-002",
    "ignores event attributes sent as ce_uri or ce_uri_ref",
    "worker/events/string-like-attributes",
)
def _pub_002_reading() -> None:
    def strip(frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            attributes = frame.cloud_event.attributes
            for name in [n for n, v in attributes.items() if v.WhichOneof("attr") != "ce_string"]:
                del attributes[name]
        return [frame]

    worker_inbound(strip)


@_worker(
    "json-as-text-json",
    "AWP-PUB-020",
    "labels JSON payloads `text/json`",
    "worker/publish/envelope/json",
)
def _pub_020() -> None:
    def change(frame: pb.OpenChannelRequest) -> Frames:
        case = frame.WhichOneof("message")
        if case == "response" and frame.response.payload.data_content_type == JSON:
            frame.response.payload.data_content_type = "text/json"
        elif case == "cloud_event":
            attribute = frame.cloud_event.attributes.get("datacontenttype")
            if attribute is not None and attribute.ce_string == JSON:
                attribute.ce_string = "text/json"
        return [frame]

    worker_outbound(change)


@_worker(
    "foreign-type-url",
    "AWP-PUB-021",
    "packs protobuf payloads in an Any whose type URL is not type.googleapis.com/...",
    "worker/rpc/ping/protobuf",
    "worker/publish/envelope/protobuf",
)
def _pub_021() -> None:
    def foreign(url: str) -> str:
        return url.replace("type.googleapis.com/", "type.example.com/")

    def change(frame: pb.OpenChannelRequest) -> Frames:
        case = frame.WhichOneof("message")
        if case == "response" and frame.response.payload.data_content_type == PROTOBUF:
            packed = any_pb2.Any.FromString(frame.response.payload.data)
            packed.type_url = foreign(packed.type_url)
            frame.response.payload.data = packed.SerializeToString()
        elif case == "cloud_event" and frame.cloud_event.HasField("proto_data"):
            frame.cloud_event.proto_data.type_url = foreign(frame.cloud_event.proto_data.type_url)
        return [frame]

    worker_outbound(change)


@_worker(
    "json-events-undecodable",
    "AWP-PUB-022",
    "cannot decode JSON events (reads only protobuf ones)",
    "worker/events/broadcast/json",
)
def _pub_022() -> None:
    from reference_worker import _inbound
    from reference_worker.serialization import SerializationError

    def make(original: Any) -> Any:
        def parse(event: Any, serializers: Any) -> Any:
            if event.WhichOneof("data") != "proto_data":
                raise SerializationError("only protobuf events are read")
            return original(event, serializers)

        return parse

    replace(_inbound, "parse_cloud_event", make)


# -- agents and RPC ----------------------------------------------------------------------


@_worker(
    "fresh-agent-per-message",
    "AWP-REG-004",
    "creates a new agent instance for every message",
    "worker/rpc/agent-instance-per-key",
)
def _reg_004() -> None:
    from reference_worker import _registry

    def make(original: Any) -> Any:
        def get(self: Any, agent_id: Any, runtime: Any) -> Any:
            self._agents.pop(agent_id, None)
            return original(self, agent_id, runtime)

        return get

    replace(_registry.AgentRegistry, "get", make)


@_worker(
    "reuse-request-ids",
    "AWP-RPC-001",
    "sends every outbound request with request id `1`",
    "worker/call/concurrent-out-of-order",
)
def _rpc_001() -> None:
    import itertools

    from reference_worker import _outbound

    def make(original: Any) -> Any:
        def init(self: Any) -> None:
            original(self)
            self._ids = itertools.repeat(1)

        return init

    replace(_outbound.OutboundCalls, "__init__", make)


def _answer_twice(frame: pb.OpenChannelRequest) -> Frames:
    if frame.WhichOneof("message") == "response" and frame.response.error:
        success = pb.OpenChannelRequest()
        success.response.request_id = frame.response.request_id
        success.response.payload.data_type = "NoneType"
        success.response.payload.data_content_type = JSON
        success.response.payload.data = b"null"
        return [frame, success]
    return [frame]


@_worker(
    "failed-call-answered-twice",
    "AWP-RPC-006",
    "answers a failed call twice: the error, then a success",
    "worker/rpc/handler-failure",
)
def _rpc_006() -> None:
    worker_outbound(_answer_twice)


@_worker(
    "unknown-type-unanswered",
    "AWP-RPC-006",
    "never answers a request for an agent type it does not serve",
    "worker/rpc/unknown-agent-type",
)
def _rpc_006_silent() -> None:
    def drop(frame: pb.OpenChannelRequest) -> Frames:
        is_response = frame.WhichOneof("message") == "response"
        if is_response and frame.response.error_code == pb.ERROR_CODE_UNKNOWN_TARGET:
            return []
        return [frame]

    worker_outbound(drop)


@_worker(
    "answer-under-another-id",
    "AWP-RPC-006",
    "answers protobuf Pings under a request id other than the one received",
    "worker/rpc/ping/protobuf",
)
def _rpc_006_id() -> None:
    def change(response: pb.RpcResponse) -> None:
        if response.payload.data_content_type == PROTOBUF:
            response.request_id += "x"

    _responses(change)


@_worker(
    "match-responses-in-order",
    "AWP-RPC-007",
    "matches each response to its oldest pending call, whatever its request id",
    "worker/call/concurrent-out-of-order",
)
def _rpc_007() -> None:
    from reference_worker import _outbound

    def make(original: Any) -> Any:
        def on_response(self: Any, response: Any) -> None:
            if response.request_id in self._pending and self._pending:
                oldest = next(iter(self._pending))
                response.request_id = oldest
            original(self, response)

        return on_response

    replace(_outbound.OutboundCalls, "on_response", make)


@_worker(
    "unknown-response-fails-a-call",
    "AWP-RPC-008",
    "fails its oldest pending call when a response for an unknown id arrives",
    "worker/call/unknown-response-id",
)
def _rpc_008() -> None:
    from reference_worker import _outbound

    def make(original: Any) -> Any:
        def on_response(self: Any, response: Any) -> None:
            if response.request_id not in self._pending and self._pending:
                response.request_id = next(iter(self._pending))
            original(self, response)

        return on_response

    replace(_outbound.OutboundCalls, "on_response", make)


@_worker(
    "no-local-deadline",
    "AWP-RPC-012",
    "waits an hour past a call's timeout before failing it locally",
    "worker/call/no-answer-deadline",
)
def _rpc_012() -> None:
    from reference_worker import _worker

    replace(_worker, "LOCAL_TIMEOUT_MARGIN", lambda original: 3600.0)


@_worker(
    "success-without-payload",
    "AWP-RPC-020",
    "sends successful JSON responses without their payload",
    "worker/rpc/ping/json",
)
def _rpc_020() -> None:
    def change(response: pb.RpcResponse) -> None:
        if not response.error and response.payload.data_content_type == JSON:
            response.ClearField("payload")

    _responses(change)


@_worker(
    "handler-failure-without-code",
    "AWP-RPC-021",
    "answers a failed handler with no error_code",
    "worker/rpc/handler-failure",
    "worker/rpc/command-deadline",
)
def _rpc_021() -> None:
    _recode(pb.ERROR_CODE_HANDLER_FAILED, pb.ERROR_CODE_UNSPECIFIED)


@_worker(
    "unknown-type-as-unsupported",
    "AWP-RPC-021",
    "answers a request for a type it does not serve with UNSUPPORTED_MESSAGE",
    "worker/rpc/unknown-agent-type",
)
def _rpc_021_type() -> None:
    _recode(pb.ERROR_CODE_UNKNOWN_TARGET, pb.ERROR_CODE_UNSUPPORTED_MESSAGE)


def _send_returns_pong(when: Callable[[Exception], bool]) -> None:
    from reference_worker import _worker, conformance_agents
    from reference_worker._errors import AgentWorkerError

    def make(original: Any) -> Any:
        async def send(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await original(self, *args, **kwargs)
            except AgentWorkerError as exc:
                if when(exc):
                    return conformance_agents.Pong()
                raise

        return send

    replace(_worker.Worker, "send", make)


@_worker(
    "error-as-empty-pong",
    "AWP-RPC-022",
    "surfaces an error response (other than a deadline) as an empty Pong",
    "worker/call/error-code-surfaced",
    "worker/call/legacy-error",
)
def _rpc_022() -> None:
    _send_returns_pong(lambda exc: "deadline" not in str(exc).lower())


@_worker(
    "empty-response-as-pong",
    "AWP-RPC-023",
    "surfaces a response with neither payload nor error as an empty Pong",
    "worker/call/empty-response",
)
def _rpc_023() -> None:
    _send_returns_pong(lambda exc: str(exc).endswith("answered with no payload"))


# -- security ----------------------------------------------------------------------------


@_worker(
    "trust-on-first-use",
    "AWP-SEC-001",
    "trusts whatever certificate the host presents instead of verifying it against its CA",
    "worker/security/tls",
    claims=("TLS",),
)
def _sec_001() -> None:
    import ssl

    import grpc

    from reference_worker import _connection

    def make(original: Any) -> Any:
        def make_channel(self: Any) -> Any:
            if self.settings.tls is None:
                return original(self)
            host, _, port = self.settings.address.rpartition(":")
            seen = ssl.get_server_certificate((host, int(port))).encode()
            credentials = grpc.ssl_channel_credentials(root_certificates=seen)
            options = [("grpc.ssl_target_name_override", self.settings.tls.server_name)]
            return grpc.aio.secure_channel(self.settings.address, credentials, options=options)

        return make_channel

    replace(_connection.Connection, "_make_channel", make)


@_worker(
    "no-client-certificate",
    "AWP-SEC-003",
    "announces mutual TLS but presents no client certificate",
    "worker/security/mutual-tls",
    claims=("MUTUAL_TLS",),
)
def _sec_003() -> None:
    import grpc

    def make(original: Any) -> Any:
        def credentials(root_certificates: Any = None, **kwargs: Any) -> Any:
            return original(root_certificates=root_certificates)

        return credentials

    replace(grpc, "ssl_channel_credentials", make)


@_worker(
    "token-not-sent",
    "AWP-SEC-005",
    "announces a bearer token but sends none",
    "worker/security/bearer-token",
    claims=("BEARER_TOKEN",),
)
def _sec_005() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        def metadata(self: Any) -> Any:
            return [item for item in original(self) if item[0] != "authorization"]

        return metadata

    replace(_connection.Connection, "metadata", make)


# -- subscriptions -----------------------------------------------------------------------


@_worker(
    "prefix-matches-exactly",
    "AWP-SUB-010",
    "matches a prefix subscription only when the topic type equals the prefix",
    "worker/events/prefix-topic",
    "worker/events/direct-addressed",
)
def _sub_010() -> None:
    from reference_worker import _subscriptions

    def matches(self: Any, topic: Any) -> bool:
        return bool(topic.type == self.spec.topic)

    _subscriptions.Subscription.matches = matches  # type: ignore[method-assign]


@_worker(
    "no-direct-addressing",
    "AWP-SUB-011",
    "registers agent types without their direct-addressing prefix subscription",
    "worker/registration/conformance-agent",
    "worker/events/direct-addressed",
)
def _sub_011() -> None:
    from reference_worker import _worker

    def direct(s: Any) -> bool:
        return bool(s.spec.prefix and s.spec.topic == f"{s.agent_type}:")

    def make_announce(original: Any) -> Any:
        async def announce(conn: Any, agent_types: list[str], subscriptions: list[Any]) -> None:
            await original(conn, agent_types, [s for s in subscriptions if not direct(s)])

        return announce

    def make(original: Any) -> Any:
        async def register(self: Any, type_name: str, factory: Any, **kwargs: Any) -> None:
            await original(self, type_name, factory, **kwargs)
            kept = [s for s in self._registry.subscriptions if not direct(s)]
            self._registry.subscriptions = kept

        return register

    replace(_worker, "announce", make_announce)
    replace(_worker.Worker, "register", make)


@_worker(
    "deliver-to-sender",
    "AWP-SUB-012",
    "delivers an event to the agent named as its sender",
    "worker/events/not-to-sender",
)
def _sub_012() -> None:
    from reference_worker import _registry

    replace(
        _registry,
        "recipients",
        lambda original: lambda subscriptions, topic, sender: original(subscriptions, topic, None),
    )


# -- versions and handshake --------------------------------------------------------------


def _has_unknown_fields(message: Any) -> bool:
    known = type(message)()
    known.CopyFrom(message)
    known.DiscardUnknownFields()
    return bool(known.ByteSize() != message.ByteSize())


@_worker(
    "drop-frames-with-unknown-fields",
    "AWP-VER-001",
    "drops a frame whose message carries a field it does not know",
    "worker/robustness/unknown-fields-and-cases",
)
def _ver_001() -> None:
    def drop(frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") is not None and _has_unknown_fields(frame):
            return []
        return [frame]

    worker_inbound(drop)


@_worker(
    "future-code-as-unknown-target",
    "AWP-VER-002",
    "reads an error_code it does not know as UNKNOWN_TARGET",
    "worker/robustness/notice-and-future-enum",
)
def _ver_002() -> None:
    _error_for_code(
        lambda code: code if code in pb.ErrorCode.values() else pb.ERROR_CODE_UNKNOWN_TARGET
    )


@_worker(
    "hello-version-zero",
    "AWP-VER-010",
    "sends a hello with protocol_version 0",
    "worker/handshake/hello",
)
def _ver_010() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        def hello(self: Any) -> Any:
            message = original(self)
            message.protocol_version = 0
            return message

        return hello

    replace(_connection.Connection, "hello", make)


@_worker(
    "own-capabilities-in-force",
    "AWP-VER-012",
    "uses every capability its hello lists, whatever the welcome says",
    "worker/handshake/capability-not-welcomed",
)
def _ver_012() -> None:
    from reference_worker import _connection

    def in_force(self: Any, capability: Any) -> bool:
        return capability in self.settings.capabilities

    _connection.Connection.in_force = in_force  # type: ignore[method-assign]


@_worker(
    "refuse-legacy-host",
    "AWP-VER-015",
    "refuses to work with a host that sends no welcome",
    "worker/handshake/legacy-host",
)
def _ver_015() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        async def open_channel(self: Any, *args: Any) -> None:
            await original(self, *args)
            if self.welcome is None:
                with contextlib.suppress(Exception):
                    await self.abort()
                raise _connection.HostConnectionError("the host sent no welcome")

        return open_channel

    replace(_connection.Connection, "open", make)


@_worker(
    "claims-tls-in-plaintext",
    "AWP-VER-016",
    "announces CAPABILITY_TLS on a plaintext connection",
    "worker/handshake/hello",
)
def _ver_016() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        def hello(self: Any) -> Any:
            message = original(self)
            message.capabilities.append(pb.CAPABILITY_TLS)
            return message

        return hello

    replace(_connection.Connection, "hello", make)


# -- added with spec v1.0 ----------------------------------------------------------------


@_worker(
    "exit-nonzero-after-drain",
    "AWP-CNF-022",
    "exits with status 3 once a drain started by SIGTERM completes",
    "worker/lifecycle/sigterm-drains",
)
def _cnf_022() -> None:
    import os

    from reference_worker import _worker

    def make(original: Any) -> Any:
        async def stop_when_signal(self: Any, *args: Any, **kwargs: Any) -> None:
            await original(self, *args, **kwargs)
            os._exit(3)

        return stop_when_signal

    replace(_worker.Worker, "stop_when_signal", make)


@_worker(
    "certificate-without-key-ignored",
    "AWP-CNF-025",
    "given a certificate without its key, ignores both and starts",
    "worker/security/certificate-without-key",
)
def _cnf_025() -> None:
    import os

    from reference_worker import _worker

    def make(original: Any) -> Any:
        def settings(environ: Any = None) -> Any:
            env = dict(os.environ if environ is None else environ)
            if bool(env.get("AGENTWORKER_TLS_CERT")) != bool(env.get("AGENTWORKER_TLS_KEY")):
                env.pop("AGENTWORKER_TLS_CERT", None)
                env.pop("AGENTWORKER_TLS_KEY", None)
            return original(env)

        return settings

    replace(_worker, "settings_from_env", make)


# -- mailboxes, handler slots and the inbound queue --------------------------------------


@_worker(
    "events-share-no-mailbox",
    "AWP-CONN-040",
    "starts each event in a mailbox of its own, so one agent's event handlers overlap",
    "worker/events/per-agent-order",
)
def _conn_040() -> None:
    import itertools

    from reference_worker import _inbound, _mailbox
    from reference_worker._ids import AgentId

    numbers = itertools.count()

    def make(original: Any) -> Any:
        async def put(self: Any, deliveries: list[Any]) -> None:
            for delivery in deliveries:
                if isinstance(delivery.item, _inbound._Event):
                    own = delivery.agent_id
                    delivery.agent_id = AgentId(own.type, f"{own.key}#{next(numbers)}")
            await original(self, deliveries)

        return put

    replace(_mailbox.Dispatcher, "put", make)


@_worker(
    "requests-share-no-mailbox",
    "AWP-CONN-040",
    "starts each request in a mailbox of its own, so one agent's request handlers overlap",
    "worker/flow/deadline-passes-in-mailbox",
)
def _conn_040_requests() -> None:
    import itertools

    from reference_worker import _inbound, _mailbox
    from reference_worker._ids import AgentId

    numbers = itertools.count()

    def make_offer(original: Any) -> Any:
        def offer(self: Any, delivery: Any) -> bool:
            own = delivery.agent_id
            delivery.agent_id = AgentId(own.type, f"{own.key}#{next(numbers)}")
            return bool(original(self, delivery))

        return offer

    def make_handle(original: Any) -> Any:
        async def handle(self: Any, work: Any, delivery: Any) -> Any:
            key = delivery.agent_id  # the mailbox's; the handler gets the real target
            delivery.agent_id = AgentId.from_proto(work.request.target)
            try:
                return await original(self, work, delivery)
            finally:
                delivery.agent_id = key

        return handle

    replace(_mailbox.Dispatcher, "offer", make_offer)
    replace(_inbound.Inbound, "_handle_request", make_handle)


@_worker(
    "event-stall-ignored",
    "AWP-CNF-030",
    "handles a Ping event with stall_ms at once, without waiting",
    "worker/events/per-agent-order",
)
def _cnf_030() -> None:
    def make(original: Any) -> Any:
        async def on_proto_ping(self: Any, message: Any, ctx: Any) -> Any:
            if not ctx.is_rpc:
                message.stall_ms = 0
            return await original(self, message, ctx)

        return on_proto_ping

    _agent_method("on_proto_ping", make)


@_worker(
    "reader-waits-for-a-slot",
    "AWP-FLOW-030",
    "keeps a calling handler's slot while it waits, and stops reading while every slot is taken",
    "worker/flow/responses-while-busy",
)
def _flow_030() -> None:
    from reference_worker import _inbound, _mailbox

    @contextlib.asynccontextmanager
    async def keep_slot(self: Any) -> Any:
        yield

    def make(original: Any) -> Any:
        async def on_frame(self: Any, conn: Any, frame: Any) -> None:
            dispatcher = self.dispatcher
            # Polls, so that the mutant leaves the dispatcher's own code as it is.
            while dispatcher.running >= dispatcher.max_running and not dispatcher.closed:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await original(self, conn, frame)

        return on_frame

    _mailbox.Dispatcher.waiting_for_call = keep_slot  # type: ignore[method-assign]
    replace(_inbound.Inbound, "on_frame", make)


@_worker(
    "expired-request-runs",
    "AWP-FLOW-033",
    "runs the handler of a request whose deadline passed while it waited in the queue",
    "worker/flow/deadline-passes-in-mailbox",
)
def _flow_033() -> None:
    from reference_worker import _inbound

    def make(original: Any) -> Any:
        async def handle(self: Any, work: Any, delivery: Any) -> Any:
            deadline = work.deadline
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                work.deadline = None  # runs as if it had no deadline
            return await original(self, work, delivery)

        return handle

    replace(_inbound.Inbound, "_handle_request", make)


# -- the welcome -------------------------------------------------------------------------


@_worker(
    "no-welcome-means-all-in-force",
    "AWP-VER-020",
    "takes a host that sent no welcome to accept every capability its hello listed",
    "worker/handshake/legacy-host",
)
def _ver_020() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        def apply(self: Any, metadata: Any) -> None:
            original(self, metadata)
            if not any(key == _connection.WELCOME_KEY for key, _ in metadata or ()):
                self.welcome = pb.ChannelWelcome(
                    protocol_version=1, capabilities=list(self.settings.capabilities)
                )

        return apply

    replace(_connection.Connection, "_apply_welcome", make)


@_worker(
    "later-version-welcome-applied",
    "AWP-VER-018",
    "applies the capabilities of a welcome whose protocol_version is not 1",
    "worker/handshake/later-major-version",
)
def _ver_018() -> None:
    from reference_worker import _connection

    def make(original: Any) -> Any:
        def apply(self: Any, metadata: Any) -> None:
            rewritten = []
            for key, value in metadata or ():
                if key == _connection.WELCOME_KEY:
                    welcome = pb.ChannelWelcome.FromString(bytes(value))
                    welcome.protocol_version = 1
                    value = welcome.SerializeToString()
                rewritten.append((key, value))
            original(self, rewritten)

        return apply

    replace(_connection.Connection, "_apply_welcome", make)


# -- requests, events and notices --------------------------------------------------------


@_worker(
    "unhandled-event-closes-channel",
    "AWP-PUB-025",
    "closes its data channel on an event that decodes but that no agent handles",
    "worker/events/unhandled-type",
)
def _pub_025() -> None:
    from reference_worker import _inbound, _mailbox

    def make(original: Any) -> Any:
        async def on_event(self: Any, event: Any) -> None:
            # The dispatcher is reached only by an event that decodes; with no delivery, no
            # agent addressed handles its type.
            counts: list[int] = []

            async def put(deliveries: list[Any]) -> None:
                counts.append(len(deliveries))
                await _mailbox.Dispatcher.put(self.dispatcher, deliveries)

            self.dispatcher.put = put
            try:
                await original(self, event)
            finally:
                del self.dispatcher.put
            conn = self._runtime.connection
            if counts == [0] and conn is not None:
                await conn.abort()

        return on_event

    replace(_inbound.Inbound, "_on_event", make)


@_worker(
    "method-must-be-empty",
    "AWP-RPC-026",
    "refuses a request whose `method` is set with UNSUPPORTED_MESSAGE",
    "worker/rpc/payload-reading",
)
def _rpc_026() -> None:
    from reference_worker import _inbound

    def make(original: Any) -> Any:
        async def handle(self: Any, work: Any, delivery: Any) -> Any:
            if work.request.method:
                return _inbound._error(
                    work.request, pb.ERROR_CODE_UNSUPPORTED_MESSAGE, "unknown method"
                )
            return await original(self, work, delivery)

        return handle

    replace(_inbound.Inbound, "_handle_request", make)


@_worker(
    "notice-fails-pending-call",
    "AWP-ERR-022",
    "fails its own pending call whose request id a notice names",
    "worker/call/notice-naming-call",
)
def _err_022() -> None:
    from reference_worker import _inbound

    def make(original: Any) -> Any:
        def on_notice(self: Any, notice: Any) -> None:
            original(self, notice)
            self._outbound.on_response(
                pb.RpcResponse(
                    request_id=notice.request_id,
                    error=notice.message or "notice",
                    error_code=notice.code,
                )
            )

        return on_notice

    replace(_inbound.Inbound, "_on_notice", make)


@_worker(
    "save-unknown-key-fails",
    "AWP-CTL-008",
    "answers SaveStateRequest for a key with no instance yet with HANDLER_FAILED",
    "worker/state/save-load",
)
def _ctl_008() -> None:
    from reference_worker import _control

    def make(original: Any) -> Any:
        async def serve(self: Any, name: str, value: bytes, destination: str) -> Any:
            if name == "SaveStateRequest":
                save = pb.SaveStateRequest.FromString(value)
                agent_id = self._target(save.agent_id, destination)
                worker = self._lookup.__self__
                if agent_id not in worker._registry._agents:
                    return pb.SaveStateResponse(
                        error=f"no instance of {agent_id}",
                        error_code=pb.ERROR_CODE_HANDLER_FAILED,
                    )
            return await original(self, name, value, destination)

        return serve

    replace(_control.StateService, "_serve", make)


# -- the conformance agent's payloads ----------------------------------------------------


@_worker(
    "seq-wraps-to-int32",
    "AWP-CNF-024",
    "reads a JSON Ping's seq outside the int32 range modulo 2^32 instead of refusing it",
    "worker/rpc/payload-reading",
)
def _cnf_024() -> None:
    import json

    def wrap(frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") != "request":
            return [frame]
        payload = frame.request.payload
        if (payload.data_type, payload.data_content_type) != ("Ping", JSON):
            return [frame]
        value = json.loads(payload.data)
        seq = value.get("seq")
        if isinstance(seq, int) and not -(2**31) <= seq < 2**31:
            value["seq"] = (seq + 2**31) % 2**32 - 2**31
            payload.data = json.dumps(value).encode()
        return [frame]

    worker_inbound(wrap)


@_worker(
    "deadline-zero-is-immediate",
    "AWP-CNF-021",
    "reads a Command's deadline_ms 0 as a deadline of 1 ms",
    "worker/rpc/command-deadline",
)
def _cnf_021() -> None:
    def make(original: Any) -> Any:
        async def on_command(self: Any, message: Any, ctx: Any) -> Any:
            if message.deadline_ms == 0:
                message.deadline_ms = 1
            return await original(self, message, ctx)

        return on_command

    _agent_method("on_command", make)


@_worker(
    "command-result-in-json",
    "AWP-CNF-023",
    "answers a successful Command with its CommandResult in JSON",
    "worker/rpc/command-deadline",
)
def _cnf_023() -> None:
    from google.protobuf import json_format

    from agentworker.conformance.v1 import contract_pb2

    def change(response: pb.RpcResponse) -> None:
        payload = response.payload
        full_name = contract_pb2.CommandResult.DESCRIPTOR.full_name
        if payload.data_content_type == PROTOBUF and payload.data_type == full_name:
            result = contract_pb2.CommandResult()
            any_pb2.Any.FromString(payload.data).Unpack(result)
            payload.data_type = contract_pb2.CommandResult.DESCRIPTOR.name
            payload.data_content_type = JSON
            text = json_format.MessageToJson(result, preserving_proto_field_name=True)
            payload.data = text.encode()

    _responses(change)
