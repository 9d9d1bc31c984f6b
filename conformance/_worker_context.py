"""What a worker case works with: the harness host, the worker's current connection, helpers
to drive the conformance agent (spec 16.2) and assertion helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from agentworker.conformance.v1 import contract_pb2 as cp
from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure, CaseSkip, SkipReason
from conformance._harness_host import Connection, HarnessHost, Inbound
from conformance._payloads import decode_payload, proto_payload
from conformance._steps import StepRecorder, StepsMixin
from conformance._trace import Trace
from conformance._worker_subject import WorkerSubject

__all__ = [
    "AGENT_TYPE",
    "BROADCAST_TOPIC",
    "DIRECT_PREFIX",
    "PEER_TYPE",
    "PREFIX_TOPIC",
    "RECEIPTS_TOPIC",
    "WorkerContext",
]

AGENT_TYPE = "conformance"
BROADCAST_TOPIC = "conformance.broadcast"
PREFIX_TOPIC = "conformance.prefix."
DIRECT_PREFIX = "conformance:"
RECEIPTS_TOPIC = "conformance.receipts"
PEER_TYPE = "harness"  # an agent type the harness itself serves (outbound RPC cases)


def subscription_rules(conn_calls: list[pb.AddSubscriptionRequest]) -> set[tuple[str, str, str]]:
    """Return the (kind, topic or prefix, agent type) of each subscription added."""
    rules = set()
    for request in conn_calls:
        sub = request.subscription
        kind = sub.WhichOneof("subscription")
        if kind == "type_subscription":
            rules.add(("type", sub.type_subscription.topic_type, sub.type_subscription.agent_type))
        elif kind == "type_prefix_subscription":
            rule = sub.type_prefix_subscription
            rules.add(("prefix", rule.topic_type_prefix, rule.agent_type))
    return rules


REQUIRED_RULES = {
    ("type", BROADCAST_TOPIC, AGENT_TYPE),
    ("prefix", PREFIX_TOPIC, AGENT_TYPE),
    ("prefix", DIRECT_PREFIX, AGENT_TYPE),
}


def is_response_to(request_id: str) -> Callable[[Inbound], bool]:
    """Return a predicate matching the response frame for ``request_id``."""

    def match(item: Inbound) -> bool:
        frame = item.frame
        return bool(
            not item.connection.control
            and frame.WhichOneof("message") == "response"
            and frame.response.request_id == request_id
        )

    return match


@dataclass(slots=True)
class WorkerContext(StepsMixin):
    """Per-case state."""

    subject: WorkerSubject
    scale: float
    trace: Trace = field(default_factory=Trace)
    steps: StepRecorder = field(default_factory=StepRecorder)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extras: list[WorkerSubject] = field(default_factory=list)
    _counter: int = 0
    _log_offset: int = 0
    _first_connection: int = 0
    _inbound_offset: int = 0

    def __post_init__(self) -> None:
        current = self.subject.current_connection()
        self._first_connection = (
            self.host.connections.index(current)
            if current is not None
            else len(self.host.connections)
        )
        self.host.trace = self.trace
        self.host.mark_all_consumed()
        self._inbound_offset = len(self.host.inbound)
        self._log_offset = self.subject.log_size()

    @property
    def host(self) -> HarnessHost:
        """Return the harness host."""
        return self.subject.host

    def unique(self, prefix: str) -> str:
        """Return a fresh name (keys, request ids)."""
        self._counter += 1
        return f"{prefix}-{self.run_id}-{self._counter}"

    def seconds(self, nominal: float) -> float:
        """Return ``nominal`` seconds scaled by --timeout-scale."""
        return nominal * self.scale

    def need_process_control(self, what: str) -> None:
        """Skip the case as "not applicable" when the harness did not start the worker."""
        if not self.subject.spawned:
            raise CaseSkip(SkipReason.NOT_APPLICABLE, f"{what} needs spawn mode")

    # -- the worker's session --------------------------------------------------------------

    def session_calls(self, conn: Connection) -> list[tuple[str, object]]:
        """Return (method, request) of the unary calls made with ``conn``'s client-id."""
        return [
            (call.method, call.request)
            for call in self.host.calls
            if call.client_id == conn.client_id and call.request is not None
        ]

    def registration_state(self, conn: Connection) -> tuple[bool, set[tuple[str, str, str]]]:
        """Return whether ``conn``'s client registered `conformance`, and its rules."""
        registered = False
        adds: list[pb.AddSubscriptionRequest] = []
        for method, request in self.session_calls(conn):
            if method == "RegisterAgent" and isinstance(request, pb.RegisterAgentRequest):
                registered = registered or request.type == AGENT_TYPE
            if method == "AddSubscription" and isinstance(request, pb.AddSubscriptionRequest):
                adds.append(request)
        return registered, subscription_rules(adds)

    async def ready(self, within: float = 10.0) -> Connection:
        """Wait until the worker has an open data channel, registered `conformance` and
        added its three subscriptions (AWP-CNF-002); return that channel."""

        await self.subject.restart_if_needed()
        if self.subject.start_problem:
            raise CaseFailure(f"the worker could not be started: {self.subject.start_problem}")

        def state() -> Connection | None:
            status = self.subject.returncode
            if status is not None:
                raise CaseFailure(
                    f"the worker exited with status {status} before it was ready; its last "
                    f"output:\n{self.subject.output_tail()}"
                )
            conn = self.subject.current_connection()
            if conn is None:
                return None
            registered, rules = self.registration_state(conn)
            return conn if registered and rules >= REQUIRED_RULES else None

        try:
            conn: Connection = await self.host.wait_for(
                "ready worker (open data channel, `conformance` registered and subscribed)",
                state,
                within,
            )
        except CaseFailure:
            conn_or_none = self.subject.current_connection()
            if conn_or_none is None:
                raise
            registered, rules = self.registration_state(conn_or_none)
            raise CaseFailure(
                f"the worker is not ready: registered `conformance`: {registered}; missing "
                f"subscriptions: {sorted(REQUIRED_RULES - rules)} (AWP-CNF-002)"
            ) from None
        # Let the worker finish what follows its last registration call.
        await asyncio.sleep(0.2)
        return conn

    # -- driving the conformance agent -----------------------------------------------------

    async def rpc(
        self,
        conn: Connection,
        payload: pb.Payload,
        *,
        key: str = "k",
        request_id: str | None = None,
        within: float = 5.0,
        timeout_ms: int = 0,
    ) -> pb.RpcResponse:
        """Send a request to `conformance/key` and wait for its response."""
        rid = request_id or self.unique("h")
        await self.send_request(conn, payload, key=key, request_id=rid, timeout_ms=timeout_ms)
        return await self.expect_response(rid, within)

    async def send_request(
        self,
        conn: Connection,
        payload: pb.Payload,
        *,
        key: str,
        request_id: str,
        timeout_ms: int = 0,
    ) -> None:
        """Send a request to `conformance/key` without waiting."""
        request = pb.RpcRequest(
            request_id=request_id,
            target=pb.AgentId(type=AGENT_TYPE, key=key),
            payload=payload,
            timeout_ms=timeout_ms,
        )
        request.source.CopyFrom(pb.AgentId(type=PEER_TYPE, key="caller"))
        await conn.write(pb.OpenChannelResponse(request=request))

    async def expect_response(self, request_id: str, within: float = 5.0) -> pb.RpcResponse:
        """Wait for the worker's response to ``request_id``."""
        item = await self.host.expect(
            f"response to request {request_id!r}",
            is_response_to(request_id),
            within,
        )
        response: pb.RpcResponse = item.frame.response
        return response

    async def command(
        self, conn: Connection, command: cp.Command, *, key: str = "k", within: float = 10.0
    ) -> cp.CommandResult:
        """Send a Command and return its CommandResult; fail on an error response."""
        if not command.case_id:
            command.case_id = self.unique("cmd")
        response = await self.rpc(conn, proto_payload(command), key=key, within=within)
        self.check(
            response.error == "",
            f"Command {command.WhichOneof('action')} failed: {response.error!r} "
            f"({pb.ErrorCode.Name(response.error_code)})",
        )
        result, problem = decode_payload(response.payload, cp.CommandResult)
        if result is None:
            raise CaseFailure(f"the Command's answer is not a CommandResult: {problem}")
        return result

    async def command_later(self, conn: Connection, command: cp.Command, *, key: str = "k") -> str:
        """Send a Command without waiting; return its request id."""
        command.case_id = command.case_id or self.unique("cmd")
        rid = self.unique("h")
        await self.send_request(conn, proto_payload(command), key=key, request_id=rid)
        return rid

    async def expect_outbound_request(self, what: str, within: float = 5.0) -> pb.RpcRequest:
        """Wait for a request the worker sends to the harness-served type."""
        item = await self.host.expect(
            what,
            lambda i: (
                not i.connection.control
                and i.frame.WhichOneof("message") == "request"
                and i.frame.request.target.type == PEER_TYPE
            ),
            within,
        )
        request: pb.RpcRequest = item.frame.request
        return request

    async def expect_receipt(
        self, event_id: str, within: float = 5.0
    ) -> tuple[cp.EventReceipt, Inbound]:
        """Wait for the EventReceipt the worker publishes for event ``event_id``."""

        def match(item: Inbound) -> bool:
            frame = item.frame
            if item.connection.control or frame.WhichOneof("message") != "cloud_event":
                return False
            event = frame.cloud_event
            if event.type != RECEIPTS_TOPIC or event.WhichOneof("data") != "proto_data":
                return False
            receipt = cp.EventReceipt()
            try:
                receipt.ParseFromString(event.proto_data.value)
            except Exception:  # a receipt that does not decode is not this one
                return False
            return receipt.event_id == event_id

        try:
            item = await self.host.expect(f"EventReceipt for event {event_id}", match, within)
        except CaseFailure as failure:
            anonymous = self._receipts_without_event_id()
            if anonymous:
                raise CaseFailure(
                    f"no EventReceipt for event {event_id}, but {anonymous} EventReceipt(s) "
                    "arrived with an empty event_id; EventReceipt.event_id is REQUIRED and the "
                    "harness matches receipts by it (AWP-CNF-005)"
                ) from failure
            raise
        receipt = cp.EventReceipt.FromString(item.frame.cloud_event.proto_data.value)
        return receipt, item

    def _receipts_without_event_id(self) -> int:
        """Count the receipts seen during the case that carry no event id."""
        count = 0
        for item in self.host.inbound[self._inbound_offset :]:
            if item.connection.control or item.frame.WhichOneof("message") != "cloud_event":
                continue
            event = item.frame.cloud_event
            if event.type != RECEIPTS_TOPIC:
                continue
            receipt = cp.EventReceipt()
            try:
                receipt.ParseFromString(event.proto_data.value)
            except Exception:  # not a receipt at all; other checks report that
                continue
            count += not receipt.event_id
        return count

    # -- runner hooks ----------------------------------------------------------------------

    def verify(self) -> None:
        """Record a failed step for a violation seen in passing on any data channel the worker
        opened during the case: a frame with no oneof case or that does not decode
        (AWP-CONN-010), a batch while batching is not in force (AWP-BAT-001), an empty or
        nested batch (AWP-BAT-002)."""
        for conn in self.host.connections[self._first_connection :]:
            if conn.control:
                continue
            where = f"channel #{conn.number}"
            self.decide(
                "AWP-CONN-010",
                f"{where}: every frame has a oneof case",
                conn.caseless == 0,
                f"{where}: {conn.caseless} frames with no oneof case",
            )
            self.decide(
                "AWP-CONN-010",
                f"{where}: every frame decodes",
                conn.undecodable == 0,
                f"{where}: {conn.undecodable} frames that do not decode",
            )
            in_force = pb.CAPABILITY_BATCHING in conn.capabilities
            self.decide(
                "AWP-BAT-001",
                f"{where}: no batch unless batching is in force",
                in_force or conn.batches == 0,
                f"{where}: {conn.batches} batch frames while batching is not in force",
            )
            self.decide(
                "AWP-BAT-002",
                f"{where}: no empty or nested batch",
                conn.bad_batches == 0,
                f"{where}: {conn.bad_batches} empty or nested batches",
            )

    async def close(self) -> None:
        """Record the worker's output during the case; mark the worker for a restart when it
        has no open data channel any more."""
        output = self.subject.output_since(self._log_offset)
        for line in output.splitlines()[-30:]:
            self.trace.collected("worker-log", line)
        for extra in self.extras:
            for line in extra.output_tail(15).splitlines():
                self.trace.collected("extra-log", line)
            await extra.stop()
        if self.subject.current_connection() is None:
            self.subject.dirty = True
        self.host.trace = Trace()  # what happens between cases belongs to no case
