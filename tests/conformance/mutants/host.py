"""Host mutants: the reference host with one MUST broken, each by a test-side patch.

Patches import the reference host lazily: the subject process applies the host's gRPC
settings before anything loads gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any, cast

from agentworker.v1 import agentworker_pb2 as pb
from tests.conformance.mutants._hooks import host_inbound, host_outbound, replace
from tests.conformance.mutants._registry import mutant

__all__: list[str] = []

Frames = list[Any]


def _host(
    name: str,
    requirement: str,
    summary: str,
    *catches: str,
    args: tuple[str, ...] = (),
    spares: tuple[str, ...] = (),
) -> Callable[[Callable[[], None]], Callable[[], None]]:
    return mutant(
        "host", name, requirement, summary, catches=catches, host_args=args, spares=spares
    )


def _error_code(frame: pb.OpenChannelResponse, old: int, new: int) -> list[pb.OpenChannelResponse]:
    if frame.WhichOneof("message") == "response" and frame.response.error_code == old:
        frame.response.error_code = new  # type: ignore[assignment]
    return [frame]


# -- batching ----------------------------------------------------------------------------


@_host(
    "skip-batch-without-capability",
    "AWP-BAT-001",
    "drops a batch frame from a worker that has no batching in force",
    "host/batching/without-capability",
)
def _bat_001() -> None:
    def drop(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "batch" and not conn.batching:
            return []
        return [frame]

    host_inbound(drop)


@_host(
    "flatten-nested-batch",
    "AWP-BAT-002",
    "processes the frames of a nested batch instead of skipping it with a notice",
    "host/batching/nested-batch",
)
def _bat_002() -> None:
    def flatten(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") != "batch":
            return [frame]
        out = pb.OpenChannelRequest()
        for inner in frame.batch.messages:
            if inner.WhichOneof("message") == "batch":
                out.batch.messages.extend(inner.batch.messages)
            else:
                out.batch.messages.append(inner)
        return [out]

    host_inbound(flatten)


@_host(
    "reverse-batch",
    "AWP-BAT-003",
    "processes the frames of a batch in reverse order",
    "host/batching/order",
)
def _bat_003() -> None:
    def reverse(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "batch" and len(frame.batch.messages) > 1:
            out = pb.OpenChannelRequest()
            out.batch.messages.extend(reversed(frame.batch.messages))
            return [out]
        return [frame]

    host_inbound(reverse)


@_host(
    "process-oversized-batch",
    "AWP-BAT-005",
    "processes a batch with more frames than its welcome's limit, and drops an empty one silently",
    "host/batching/frame-count-limits",
)
def _bat_005() -> None:
    def unbatch(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "batch" and not 0 < len(frame.batch.messages) <= 1024:
            return list(frame.batch.messages)
        return [frame]

    host_inbound(unbatch)


# -- connections -------------------------------------------------------------------------


@_host(
    "ignore-token-file",
    "AWP-SEC-005",
    "started from the bearer-token command, ignores the token file it is given (and so "
    "requires no token)",
    "host/security/bearer-token",
)
def _sec_005_file() -> None:
    from reference_host import _cli

    replace(_cli, "load_tokens", lambda original: lambda path: ())


@_host(
    "own-tls-certificate",
    "AWP-CNF-020",
    "started from the TLS command, serves TLS with a certificate of its own instead of "
    "{tls_cert} and {tls_key}",
    "host/security/tls",
)
def _cnf_020() -> None:
    import grpc

    from conformance._certs import make_certificates

    def make(original: Any) -> Any:
        def credentials(pairs: Any, *args: Any, **kwargs: Any) -> Any:
            certs = make_certificates()  # another CA, which the harness does not trust
            try:
                own = (certs.server_key.read_bytes(), certs.server_cert.read_bytes())
            finally:
                certs.cleanup()
            return original([own], *args, **kwargs)

        return credentials

    replace(grpc, "ssl_server_credentials", make)


@_host(
    "legacy-path-only",
    "AWP-CONN-001",
    "serves only the legacy service path, not agentworker.v1.AgentRpcService",
    "host/connection/legacy-path",
)
def _conn_001() -> None:
    from reference_host import _servicer

    replace(_servicer.AgentRpcServicer, "generic_handlers", lambda f: lambda self: f(self)[1:])


@_host(
    "anonymous-client-id",
    "AWP-CONN-002",
    "accepts a call without client-id metadata as client 'anonymous'",
    "host/connection/client-id/missing",
)
def _conn_002() -> None:
    from reference_host import _security

    def make(original: Any) -> Any:
        def authenticate(self: Any, metadata: Any) -> Any:
            if not metadata.get("client-id"):
                metadata = {**metadata, "client-id": "anonymous"}
            return original(self, metadata)

        return authenticate

    replace(_security.Authenticator, "authenticate", make)


def _set_max_message_bytes(value: int, *, announce: int | None = None) -> None:
    from reference_host import _config

    def make(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            object.__setattr__(self, "max_message_bytes", value)

        return init

    replace(_config.HostConfig, "__init__", make)
    if announce is not None:
        from reference_host import _handshake

        def make_welcome(original: Any) -> Any:
            def welcome(config: Any, capabilities: Any, connection_id: str) -> bytes:
                message = pb.ChannelWelcome.FromString(
                    original(config, capabilities, connection_id)
                )
                message.max_message_bytes = announce
                return message.SerializeToString()

            return welcome

        replace(_handshake, "welcome", make_welcome)


@_host(
    "one-mib-limit",
    "AWP-CONN-003",
    "accepts frames of at most 1 MiB",
    "host/connection/frame-size-limits",
)
def _conn_003() -> None:
    _set_max_message_bytes(1024 * 1024)


@_host(
    "no-size-limit",
    "AWP-CONN-004",
    "announces its limit but accepts larger frames",
    "host/connection/frame-size-limits",
)
def _conn_004() -> None:
    from reference_host import _config

    _set_max_message_bytes(64 * 1024 * 1024, announce=_config.MAX_MESSAGE_BYTES)


def _replacing_attach(original: Any) -> Any:
    """Wrap a router's ``attach`` so that a second channel for a client-id ends the open one
    and takes its place instead of being refused."""

    def attach(self: Any, conn: Any) -> None:
        old = self.connections.get(conn.client_id)
        if old is not None:
            self.detach(old)
            old.end()
        original(self, conn)

    return attach


@_host(
    "replace-existing-channel",
    "AWP-CONN-005",
    "a second OpenChannel for a client-id replaces its open channel",
    "host/connection/duplicate-channel",
)
def _conn_005() -> None:
    from reference_host import _router

    replace(_router.Router, "attach", _replacing_attach)


@_host(
    "no-channel-wait",
    "AWP-CONN-008",
    "fails a registration that arrives before its data channel at once",
    "host/registration/before-channel",
)
def _conn_008() -> None:
    from reference_host import _servicer

    def make(original: Any) -> Any:
        def init(self: Any, **kwargs: Any) -> None:
            original(self, **kwargs)
            self._channel_wait_s = 0.0

        return init

    replace(_servicer.AgentRpcServicer, "__init__", make)


@_host(
    "empty-frame-after-event",
    "AWP-CONN-010",
    "follows each delivered event with a frame that has no case set",
    "host/publish/fan-out-exactness",
)
def _conn_010() -> None:
    def add_empty(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            return [frame, pb.OpenChannelResponse()]
        return [frame]

    host_outbound(add_empty)


def _hold_events(hold: Any) -> None:
    """Process an event that ``hold(conn, frame)`` picks only after the next frame from the
    same publisher, so that the two reach every receiver swapped."""
    held: dict[int, pb.OpenChannelRequest] = {}

    def reorder(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        waiting = held.pop(id(conn), None)
        if waiting is not None:
            return [frame, waiting]
        if frame.WhichOneof("message") == "cloud_event" and hold(conn, frame):
            held[id(conn)] = frame
            return []
        return [frame]

    host_inbound(reorder)


@_host(
    "late-first-event",
    "AWP-CONN-011",
    "processes the first event of each publisher after the frame that follows it",
    "host/publish/per-publisher-order",
)
def _conn_011() -> None:
    seen: set[int] = set()

    def first(conn: Any, frame: pb.OpenChannelResponse) -> bool:
        if id(conn) in seen:
            return False
        seen.add(id(conn))
        return True

    _hold_events(first)


@_host(
    "swap-event-pairs",
    "AWP-PUB-011",
    "swaps each pair of consecutive events from one publisher",
    "host/publish/per-publisher-order",
)
def _pub_011() -> None:
    _hold_events(lambda conn, frame: True)


@_host(
    "silent-unknown-case",
    "AWP-CONN-012",
    "ignores a frame with no known case without a notice",
    "host/connection/unknown-frame-case",
)
def _conn_012() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def dispatch(self: Any, conn: Any, frame: Any, case: str | None, nested: bool) -> Any:
            if case is None:
                return None
            return original(self, conn, frame, case, nested)

        return dispatch

    replace(_router.Router, "_dispatch", make)


@_host(
    "undecodable-ends-every-channel",
    "AWP-CONN-014",
    "ends every data channel when one stream carries bytes that do not decode",
    "host/connection/undecodable-frame",
)
def _conn_014() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        async def read_loop(self: Any, conn: Any, frames: Any) -> None:
            async def guarded() -> Any:
                try:
                    async for frame in frames:
                        yield frame
                except Exception:
                    for other in list(self.connections.values()):
                        if other is not conn:
                            other.terminate(pb_status(), "a stream failed")
                    raise

            await original(self, conn, guarded())

        return read_loop

    def pb_status() -> Any:
        import grpc

        return grpc.StatusCode.UNAVAILABLE

    replace(_router.Router, "read_loop", make)


@_host(
    "drain-without-notice",
    "AWP-CONN-015",
    "begins to drain without telling v1 workers",
    "host/lifecycle/drain",
)
def _conn_015() -> None:
    from reference_host import _router

    def begin_drain(self: Any) -> None:
        self.draining = True

    _router.Router.begin_drain = begin_drain  # type: ignore[method-assign]


@_host(
    "drain-drops-pending",
    "AWP-CONN-016",
    "closes with RPCs pending without answering their callers",
    "host/lifecycle/drain",
    args=("--drain-grace-ms", "1000"),
)
def _conn_016() -> None:
    from reference_host import _router

    def fail_pending(self: Any) -> int:
        for conn in list(self.connections.values()):
            self._rpc.fail_target(conn)
        return 0

    _router.Router.fail_pending = fail_pending  # type: ignore[method-assign]


@_host(
    "keep-pending-on-disconnect",
    "AWP-CONN-018",
    "leaves RPCs pending at a worker that disconnects to their deadlines",
    "host/rpc/target-disconnects",
)
def _conn_018() -> None:
    from reference_host import _rpc

    _rpc.RpcTable.fail_target = lambda self, target: []  # type: ignore[method-assign]


@_host(
    "reregister-conflicts",
    "AWP-CONN-022",
    "answers a repeated RegisterAgent for the caller's own type with ALREADY_EXISTS",
    "host/registration/idempotent",
)
def _conn_022() -> None:
    from reference_host import _errors, _registry

    def make(original: Any) -> Any:
        def register(self: Any, conn: Any, agent_type: str) -> bool:
            if not original(self, conn, agent_type):
                raise _errors.AlreadyExists(f"agent type {agent_type!r} is already registered")
            return True

        return register

    replace(_registry.Registry, "register", make)


@_host(
    "duplicate-add-invalid-argument",
    "AWP-CONN-022",
    "answers a repeated identical AddSubscription with INVALID_ARGUMENT",
    "host/subscriptions/add-list-remove",
    # The case's later steps (listing, RemoveSubscription) still hold on this host.
    spares=("AWP-SUB-001", "AWP-SUB-004", "AWP-SUB-006"),
)
def _conn_022_sub() -> None:
    from reference_host import _errors, _subscriptions

    def make(original: Any) -> Any:
        def add(self: Any, owner: str, subscription: Any) -> bool:
            if not original(self, owner, subscription):
                raise _errors.InvalidArgument(f"subscription {subscription.id!r} exists")
            return True

        return add

    replace(_subscriptions.SubscriptionTable, "add", make)


# -- control channel ---------------------------------------------------------------------


@_host(
    "no-type-url-rewrite",
    "AWP-CTL-002",
    "forwards state requests with the type URL the sender used",
    "host/control/routing",
)
def _ctl_002() -> None:
    from reference_host import _control

    replace(_control, "rewrite_type_url", lambda original: lambda message, v1: message)


@_host(
    "keep-respond-to",
    "AWP-CTL-003",
    "forwards a control request with the respond_to its sender wrote",
    "host/control/routing",
)
def _ctl_003() -> None:
    from reference_host import _control, _outbound

    forged: list[str] = []

    def make_request(original: Any) -> Any:
        def request(self: Any, conn: Any, frame: Any, agent: str) -> None:
            forged.append(frame.respond_to)
            try:
                original(self, conn, frame, agent)
            finally:
                forged.pop()

        return request

    def make_offer(original: Any) -> Any:
        def offer(self: Any, data: bytes) -> bool:
            if forged and not self._batching:
                try:
                    message = pb.OpenControlChannelResponse.FromString(data)
                except Exception:
                    return bool(original(self, data))
                if message.respond_to:
                    message.respond_to = forged[-1]
                    data = message.SerializeToString()
            return bool(original(self, data))

        return offer

    replace(_control.ControlRouter, "_request", make_request)
    replace(_outbound.Outbound, "offer", make_offer)


@_host(
    "unanswered-control-failures",
    "AWP-CTL-004",
    "never answers a state request it cannot route",
    "host/control/unknown-target",
)
def _ctl_004() -> None:
    from reference_host import _control

    _control.ControlRouter._fail = lambda self, pending, code, text: None  # type: ignore[method-assign]


@_host(
    "ignore-control-timeout",
    "AWP-CTL-011",
    "gives every control call the default deadline, whatever control timeout its channel states",
    "host/control/deadline",
)
def _ctl_011() -> None:
    from reference_host import _control

    def make(original: Any) -> Any:
        def timeout_ms(self: Any, conn: Any) -> int:
            return int(self._default_timeout_ms)

        return timeout_ms

    replace(_control.ControlRouter, "timeout_ms", make)


@_host(
    "accept-bad-control-timeout",
    "AWP-CTL-012",
    "opens a control channel whose control timeout is not a positive number, using the default",
    "host/control/deadline",
)
def _ctl_012() -> None:
    from reference_host import _errors, _handshake

    def make(original: Any) -> Any:
        def parse(raw: Any) -> int | None:
            try:
                return cast("int | None", original(raw))
            except _errors.InvalidArgument:
                return None

        return parse

    replace(_handshake, "parse_control_timeout", make)


@_host(
    "forward-late-control-answers",
    "AWP-CTL-013",
    "forwards a control response that arrives after the host answered the call itself",
    "host/control/deadline",
)
def _ctl_013() -> None:
    from reference_host import _control, _outbound

    def make(original: Any) -> Any:
        def response(self: Any, conn: Any, frame: Any, client_id: str) -> None:
            sender = self.connections.get(client_id)
            if (client_id, frame.rpc_id) in self._pending or sender is None:
                original(self, conn, frame, client_id)
                return
            late = pb.OpenControlChannelResponse(
                rpc_id=frame.rpc_id, destination=frame.destination, rpc_message=frame.rpc_message
            )
            sender.outbound.owe(_outbound.OwedFrame(late.SerializeToString(), "control"))

        return response

    replace(_control.ControlRouter, "_response", make)


# -- errors ------------------------------------------------------------------------------


@_host(
    "out-of-set-error-code",
    "AWP-ERR-001",
    "answers an unknown target with an error code outside the closed set",
    "host/rpc/unknown-target",
)
def _err_001() -> None:
    host_outbound(lambda conn, f: _error_code(f, pb.ERROR_CODE_UNKNOWN_TARGET, 4242))


@_host(
    "empty-error-text",
    "AWP-ERR-002",
    "sends error responses with an empty error text",
    "host/rpc/invalid-request",
    "host/rpc/unknown-target",
)
def _err_002() -> None:
    def strip(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "response" and frame.response.error_code:
            frame.response.error = ""
        return [frame]

    host_outbound(strip)


@_host(
    "legacy-caller-gets-no-code",
    "AWP-ERR-002",
    "leaves error_code unset in errors it sends to legacy callers",
    "host/errors/legacy-caller-gets-both-fields",
)
def _err_002_legacy() -> None:
    def strip(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "response" and not conn.v1:
            frame.response.error_code = pb.ERROR_CODE_UNSPECIFIED
        return [frame]

    host_outbound(strip)


@_host(
    "duplicate-error-responses",
    "AWP-ERR-004",
    "sends every error response it generates twice",
    "host/rpc/unknown-target",
)
def _err_004() -> None:
    def twice(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "response" and frame.response.error_code:
            return [frame, frame]
        return [frame]

    host_outbound(twice)


@_host(
    "duplicate-forwarded-responses",
    "AWP-ERR-004",
    "forwards each successful response to its caller twice",
    "host/rpc/routing",
)
def _err_004_forwarded() -> None:
    def twice(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "response" and not frame.response.error_code:
            return [frame, frame]
        return [frame]

    host_outbound(twice)


@_host(
    "close-after-notice",
    "AWP-ERR-010",
    "ends a channel after sending it a notice",
    "host/publish/invalid-event",
)
def _err_010() -> None:
    def close(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "notice":
            import grpc

            asyncio.get_running_loop().call_soon(
                functools.partial(
                    conn.terminate, grpc.StatusCode.UNAVAILABLE, "closed after a notice", flush=True
                )
            )
        return [frame]

    host_outbound(close)


@_host(
    "internal-for-invalid-subscription",
    "AWP-ERR-020",
    "rejects an invalid subscription with status INTERNAL, not INVALID_ARGUMENT",
    "host/subscriptions/invalid",
)
def _err_020() -> None:
    import grpc

    from reference_host import _errors, _servicer

    class Internal(_errors.HostError):
        pass

    codes = cast("dict[type[_errors.HostError], grpc.StatusCode]", _errors.STATUS_CODES)
    codes[Internal] = grpc.StatusCode.INTERNAL

    def make(original: Any) -> Any:
        def validate(subscription: Any) -> None:
            try:
                original(subscription)
            except _errors.InvalidArgument as exc:
                raise Internal(str(exc)) from None

        return validate

    replace(_servicer, "validate_subscription", make)


# -- flow control ------------------------------------------------------------------------


@_host(
    "unbounded-queues",
    "AWP-FLOW-001",
    "queues frames for a worker without limit (and lets calls in flight grow, without which "
    "the calls-in-flight limit bounds the queue)",
    "host/flow/overloaded",
)
def _flow_001() -> None:
    from reference_host import _outbound, _router

    def make(original: Any) -> Any:
        def init(self: Any, limit: int, *args: Any, **kwargs: Any) -> None:
            original(self, 10**9, *args, **kwargs)

        return init

    def make_router(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self._max_calls = 10**9

        return init

    replace(_outbound.Outbound, "__init__", make)
    replace(_router.Router, "__init__", make_router)


@_host(
    "unavailable-when-full",
    "AWP-FLOW-002",
    "answers a request to a worker whose queue is full with TARGET_UNAVAILABLE",
    "host/flow/overloaded",
)
def _flow_002() -> None:
    host_outbound(
        lambda conn, f: _error_code(f, pb.ERROR_CODE_OVERLOADED, pb.ERROR_CODE_TARGET_UNAVAILABLE)
    )


@_host(
    "drop-for-slow-consumer",
    "AWP-FLOW-003",
    "drops events for a worker whose queue is full instead of applying backpressure",
    "host/flow/slow-consumer",
    args=("--slow-consumer-timeout-ms", "2000"),
)
def _flow_003() -> None:
    from reference_host import _router

    async def deliver_blocked(self: Any, blocked: Any) -> None:
        return None

    _router.Router._deliver_blocked = deliver_blocked  # type: ignore[method-assign]


# -- observability -----------------------------------------------------------------------


@_host(
    "serving-while-draining",
    "AWP-OBS-001",
    "keeps reporting SERVING on its health service while it drains",
    "host/lifecycle/drain",
)
def _obs_001() -> None:
    from reference_host import _health

    def make(original: Any) -> Any:
        def set_status(self: Any, service: str, status: Any) -> None:
            if status != _health.NOT_SERVING:
                original(self, service, status)

        return set_status

    replace(_health.HealthService, "set", make)


@_host(
    "strip-traceparent",
    "AWP-OBS-005",
    "drops traceparent from the metadata of the requests it forwards",
    "host/rpc/routing",
)
def _obs_005() -> None:
    def strip(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "request":
            frame.request.metadata.pop("traceparent", None)
        return [frame]

    host_outbound(strip)


# -- events ------------------------------------------------------------------------------


@_host(
    "drop-extension-attributes",
    "AWP-PUB-003",
    "drops event attributes it does not know before forwarding",
    "host/publish/forwarded-unchanged",
)
def _pub_003() -> None:
    known = {"datacontenttype", "dataschema", "subject", "time", "traceparent", "tracestate"}

    def strip(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            attributes = frame.cloud_event.attributes
            for name in [n for n in attributes if n not in known]:
                del attributes[name]
        return [frame]

    host_outbound(strip)


@_host(
    "repair-invalid-events",
    "AWP-PUB-004",
    "fills in a missing id or spec_version and delivers the event",
    "host/publish/invalid-event",
)
def _pub_004() -> None:
    def repair(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            event = frame.cloud_event
            event.id = event.id or "repaired"
            event.spec_version = "1.0"
        return [frame]

    host_inbound(repair)


def _publish_lookup(make_lookup: Any) -> None:
    """Replace the registry lookup the host uses while it routes one event."""
    from reference_host import _registry, _router

    publisher: list[Any] = []

    def make_publish(original: Any) -> Any:
        def publish(self: Any, conn: Any, event: Any) -> Any:
            publisher.append(conn)
            try:
                return original(self, conn, event)
            finally:
                publisher.pop()

        return publish

    def make(original: Any) -> Any:
        lookup = make_lookup(original)

        def wrapped(self: Any, agent_type: str, key: str) -> Any:
            if not publisher:
                return original(self, agent_type, key)
            return lookup(self, agent_type, key, publisher[-1])

        return wrapped

    replace(_router.Router, "_publish", make_publish)
    replace(_registry.Registry, "lookup", make)


@_host(
    "skip-publishers-own-worker",
    "AWP-PUB-010",
    "never delivers an event to the worker that published it",
    "host/publish/fan-out-exactness",
)
def _pub_010() -> None:
    def make(original: Any) -> Any:
        def lookup(self: Any, agent_type: str, key: str, publisher: Any) -> Any:
            found = original(self, agent_type, key)
            return None if found is publisher else found

        return lookup

    _publish_lookup(make)


@_host(
    "deliver-events-twice",
    "AWP-PUB-010",
    "delivers every event twice to each receiving worker",
    "host/publish/fan-out-exactness",
)
def _pub_010_twice() -> None:
    def twice(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "cloud_event":
            return [frame, frame]
        return [frame]

    host_outbound(twice)


@_host(
    "unroutable-blocks-event",
    "AWP-PUB-012",
    "delivers an event to nobody when one matching subscription's type is not served",
    "host/publish/unroutable-subscription",
)
def _pub_012() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def publish(self: Any, conn: Any, event: Any) -> Any:
            for agent_type, _ in self._subscriptions.agent_types_for(event.type):
                if self._registry.lookup(agent_type, event.source) is None:
                    return None
            return original(self, conn, event)

        return publish

    replace(_router.Router, "_publish", make)


# -- registration ------------------------------------------------------------------------


@_host(
    "forget-registrations",
    "AWP-REG-001",
    "accepts RegisterAgent but never routes to the registered worker",
    "host/rpc/routing",
)
def _reg_001() -> None:
    from reference_host import _registry

    _registry.Registry.register = lambda self, conn, agent_type: True  # type: ignore[method-assign]


@_host(
    "any-type-name",
    "AWP-REG-002",
    "registers agent types with characters outside A-Z a-z 0-9 _ . -",
    "host/registration/type-names",
)
def _reg_002() -> None:
    from reference_host import _servicer

    replace(_servicer, "validate_agent_type", lambda original: lambda agent_type: None)


@_host(
    "last-registration-wins",
    "AWP-REG-003",
    "lets a second worker take over a type another live worker serves",
    "host/registration/conflict",
)
def _reg_003() -> None:
    from reference_host import _errors, _registry

    def make(original: Any) -> Any:
        def register(self: Any, conn: Any, agent_type: str) -> bool:
            try:
                return bool(original(self, conn, agent_type))
            except _errors.AlreadyExists:
                for other in self._members.pop(agent_type, {}).values():
                    other.agent_types.discard(agent_type)
                return bool(original(self, conn, agent_type))

        return register

    replace(_registry.Registry, "register", make)


@_host(
    "unnamed-registration-errors",
    "AWP-REG-005",
    "rejects registrations with a status message that does not name the type",
    "host/registration/type-names",
    "host/registration/conflict",
)
def _reg_005() -> None:
    from reference_host import _errors, _registry, _servicer

    def make_validate(original: Any) -> Any:
        def validate(agent_type: str) -> None:
            try:
                original(agent_type)
            except _errors.InvalidArgument:
                raise _errors.InvalidArgument("invalid agent type") from None

        return validate

    def make_register(original: Any) -> Any:
        def register(self: Any, conn: Any, agent_type: str) -> bool:
            try:
                return bool(original(self, conn, agent_type))
            except _errors.AlreadyExists:
                raise _errors.AlreadyExists("the type is taken") from None

        return register

    replace(_servicer, "validate_agent_type", make_validate)
    replace(_registry.Registry, "register", make_register)


# -- RPC ---------------------------------------------------------------------------------


@_host(
    "forward-without-payload",
    "AWP-RPC-002",
    "forwards a request that has no payload",
    "host/rpc/invalid-request",
)
def _rpc_002() -> None:
    def fill(conn: Any, frame: pb.OpenChannelRequest) -> Frames:
        if frame.WhichOneof("message") == "request" and not frame.request.HasField("payload"):
            frame.request.payload.SetInParent()
        return [frame]

    host_inbound(fill)


@_host(
    "drop-source-on-forward",
    "AWP-RPC-003",
    "clears the source of the requests it forwards",
    "host/rpc/routing",
)
def _rpc_003() -> None:
    def strip(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "request":
            frame.request.ClearField("source")
        return [frame]

    host_outbound(strip)


@_host(
    "unknown-target-unavailable",
    "AWP-RPC-003",
    "answers a request for an unserved type with TARGET_UNAVAILABLE, not UNKNOWN_TARGET",
    "host/rpc/unknown-target",
)
def _rpc_003_code() -> None:
    host_outbound(
        lambda conn, f: _error_code(
            f, pb.ERROR_CODE_UNKNOWN_TARGET, pb.ERROR_CODE_TARGET_UNAVAILABLE
        )
    )


@_host(
    "forward-under-caller-id",
    "AWP-RPC-004",
    "forwards each request under its caller's request id and maps answers back by it",
    "host/rpc/correlation/colliding-request-ids",
)
def _rpc_004() -> None:
    from reference_host import _rpc

    def make(original: Any) -> Any:
        def start(self: Any, caller: Any, request_id: str, target: Any, timeout_ms: int) -> Any:
            call = original(self, caller, request_id, target, timeout_ms)
            del target.incoming[call.host_id]
            call.host_id = request_id
            target.incoming[request_id] = call
            return call

        return start

    replace(_rpc.RpcTable, "start", make)


@_host(
    "accept-response-from-any-connection",
    "AWP-RPC-005",
    "accepts a response for a pending request from any connection",
    "host/rpc/response-from-wrong-connection",
)
def _rpc_005() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def response(self: Any, conn: Any, message: Any) -> Any:
            if message.request_id not in conn.incoming:
                for other in self.connections.values():
                    if message.request_id in other.incoming:
                        return original(self, other, message)
            return original(self, conn, message)

        return response

    replace(_router.Router, "_response", make)


@_host(
    "no-deadline-timers",
    "AWP-RPC-010",
    "never expires a forwarded request",
    "host/rpc/deadline/expires",
)
def _rpc_010() -> None:
    from reference_host import _rpc

    def make(original: Any) -> Any:
        def start(self: Any, *args: Any) -> Any:
            call = original(self, *args)
            call.handle.cancel()
            call.handle = None
            return call

        return start

    replace(_rpc.RpcTable, "start", make)


@_host(
    "zero-forwarded-timeout",
    "AWP-RPC-011",
    "forwards requests with timeout_ms 0 instead of the remaining budget",
    "host/rpc/deadline/default-announced",
    "host/rpc/deadline/expires",
)
def _rpc_011() -> None:
    def clear(conn: Any, frame: pb.OpenChannelResponse) -> Frames:
        if frame.WhichOneof("message") == "request":
            frame.request.timeout_ms = 0
        return [frame]

    host_outbound(clear)


# -- security ----------------------------------------------------------------------------


@_host(
    "plaintext-despite-tls",
    "AWP-SEC-001",
    "started with a TLS certificate and key, serves plaintext",
    "host/security/tls",
    "host/security/tls-version",
)
def _sec_001() -> None:
    import grpc.aio

    def make(original: Any) -> Any:
        def server(*args: Any, **kwargs: Any) -> Any:
            made = original(*args, **kwargs)
            made.add_secure_port = lambda address, credentials: made.add_insecure_port(address)
            return made

        return server

    replace(grpc.aio, "server", make)


@_host(
    "optional-client-cert",
    "AWP-SEC-003",
    "configured for mutual TLS, accepts clients without a certificate",
    "host/security/mutual-tls",
)
def _sec_003() -> None:
    import grpc

    def make(original: Any) -> Any:
        def credentials(*args: Any, **kwargs: Any) -> Any:
            kwargs["require_client_auth"] = False
            return original(*args, **kwargs)

        return credentials

    replace(grpc, "ssl_server_credentials", make)


@_host(
    "any-bearer-token",
    "AWP-SEC-005",
    "accepts an unknown bearer token as the first configured one",
    "host/security/bearer-token",
)
def _sec_005() -> None:
    from reference_host import _errors, _security

    def make(original: Any) -> Any:
        def match(self: Any, header: Any) -> Any:
            try:
                return original(self, header)
            except _errors.Unauthenticated:
                if header:
                    return self._policies[0]
                raise

        return match

    replace(_security.Authenticator, "_match", make)


@_host(
    "token-any-type",
    "AWP-SEC-006",
    "ignores the agent types a token entry allows",
    "host/security/token-agent-types",
)
def _sec_006() -> None:
    from reference_host import _servicer

    replace(_servicer, "check_agent_type_allowed", lambda original: lambda policy, agent_type: None)


# -- shared agent types ------------------------------------------------------------------


@_host(
    "refuse-second-member",
    "AWP-SHR-001",
    "announces shared agent types but refuses a second member of a type",
    "host/sharing/stable-routing",
)
def _shr_001() -> None:
    from reference_host import _registry

    def make(original: Any) -> Any:
        def init(self: Any, *, allow_sharing: bool) -> None:
            original(self, allow_sharing=False)

        return init

    replace(_registry.Registry, "__init__", make)


@_host(
    "round-robin-members",
    "AWP-SHR-002",
    "routes the successive calls for one agent id to the members of its type in turn",
    "host/sharing/stable-routing",
)
def _shr_002() -> None:
    from reference_host import _registry

    turns: dict[tuple[str, str], int] = {}

    def make(original: Any) -> Any:
        def lookup(self: Any, agent_type: str, key: str) -> Any:
            members = list(self._members.get(agent_type, {}).values())
            if len(members) < 2:
                return original(self, agent_type, key)
            turn = turns.get((agent_type, key), 0)
            turns[agent_type, key] = turn + 1
            return members[turn % len(members)]

        return lookup

    replace(_registry.Registry, "lookup", make)


@_host(
    "keep-departed-member",
    "AWP-SHR-004",
    "keeps a departed member of a shared type in the routing of its keys",
    "host/sharing/stable-routing",
)
def _shr_004() -> None:
    from reference_host import _registry

    def make(original: Any) -> Any:
        def remove_connection(self: Any, conn: Any) -> None:
            shared = [t for t in conn.agent_types if len(self._members.get(t, {})) > 1]
            if not shared:
                original(self, conn)

        return remove_connection

    replace(_registry.Registry, "remove_connection", make)


# -- subscriptions -----------------------------------------------------------------------


@_host(
    "accept-subscription-without-id",
    "AWP-SUB-001",
    "accepts a subscription with an empty id",
    "host/subscriptions/invalid",
)
def _sub_001() -> None:
    from reference_host import _subscriptions

    def make(original: Any) -> Any:
        def parse(subscription: Any) -> Any:
            if not subscription.id:
                named = pb.Subscription()
                named.CopyFrom(subscription)
                named.id = "unnamed"
                return original(named)
            return original(subscription)

        return parse

    replace(_subscriptions, "_parse", make)


@_host(
    "overwrite-subscription",
    "AWP-SUB-002",
    "replaces a subscription when its id is added again with other content",
    "host/subscriptions/conflicts",
)
def _sub_002() -> None:
    from reference_host import _subscriptions

    def make(original: Any) -> Any:
        def add(self: Any, owner: str, subscription: Any) -> bool:
            existing = self._by_id.get(subscription.id)
            if existing is not None and existing.subscription != subscription:
                self._drop(subscription.id)
            return bool(original(self, owner, subscription))

        return add

    replace(_subscriptions.SubscriptionTable, "add", make)


def _rule(subscription: Any) -> Any:
    return getattr(subscription, subscription.WhichOneof("subscription") or "type_subscription")


@_host(
    "subscription-same-topic-is-same",
    "AWP-SUB-002",
    "treats a subscription added again with its id and topic as the same, whatever its agent type "
    "or rule case",
    "host/subscriptions/conflicts",
)
def _sub_002_topic() -> None:
    from reference_host import _subscriptions

    def topic(subscription: Any) -> str:
        rule = _rule(subscription)
        return str(getattr(rule, "topic_type", "") or getattr(rule, "topic_type_prefix", ""))

    def make(original: Any) -> Any:
        def add(self: Any, owner: str, subscription: Any) -> bool:
            existing = self._by_id.get(subscription.id)
            if (
                existing is not None
                and existing.owner == owner
                and topic(existing.subscription) == topic(subscription)
            ):
                return False
            return bool(original(self, owner, subscription))

        return add

    replace(_subscriptions.SubscriptionTable, "add", make)


class _BytesAware:
    """Stands in for AddSubscriptionRequest in the servicer's handler table: decodes as usual,
    but changes a repeated subscription whose bytes differ from its first add, so that the
    host compares encoded bytes instead of fields."""

    first: dict[str, bytes] = {}  # noqa: RUF012  (shared by design: one table per process)

    @classmethod
    def FromString(cls, data: bytes) -> pb.AddSubscriptionRequest:
        request = pb.AddSubscriptionRequest.FromString(data)
        sub = request.subscription
        if cls.first.setdefault(sub.id, data) != data and sub.WhichOneof("subscription"):
            rule = _rule(sub)
            field = "topic_type" if hasattr(rule, "topic_type") else "topic_type_prefix"
            setattr(rule, field, getattr(rule, field) + "#other-bytes")
        return request


@_host(
    "compare-subscription-bytes",
    "AWP-SUB-002",
    "compares a subscription added again with its first add as encoded bytes, not field by field",
    "host/subscriptions/conflicts",
)
def _sub_002_bytes() -> None:
    import types

    from reference_host import _servicer

    shim = types.ModuleType("agentworker_pb2_bytes_aware")
    shim.__dict__.update(vars(pb))
    shim.__dict__["AddSubscriptionRequest"] = _BytesAware
    setattr(_servicer, "pb", shim)  # noqa: B010  (the servicer's module global, for its handlers)


@_host(
    "remove-unknown-succeeds",
    "AWP-SUB-004",
    "answers RemoveSubscription for an unknown id with OK",
    "host/subscriptions/conflicts",
)
def _sub_004() -> None:
    from reference_host import _errors, _subscriptions

    def make(original: Any) -> Any:
        def remove(self: Any, owner: str, subscription_id: str) -> None:
            with contextlib.suppress(_errors.NotFound):
                original(self, owner, subscription_id)

        return remove

    replace(_subscriptions.SubscriptionTable, "remove", make)


@_host(
    "remove-others-subscription",
    "AWP-SUB-004",
    "lets a client remove a subscription another client owns",
    "host/subscriptions/conflicts",
)
def _sub_004_owner() -> None:
    from reference_host import _subscriptions

    def make(original: Any) -> Any:
        def remove(self: Any, owner: str, subscription_id: str) -> None:
            entry = self._by_id.get(subscription_id)
            original(self, entry.owner if entry is not None else owner, subscription_id)

        return remove

    replace(_subscriptions.SubscriptionTable, "remove", make)


@_host(
    "keep-subscriptions-on-disconnect",
    "AWP-SUB-005",
    "keeps a disconnected client's subscriptions",
    "host/subscriptions/cleanup-on-disconnect",
)
def _sub_005() -> None:
    from reference_host import _subscriptions

    _subscriptions.SubscriptionTable.remove_owner = lambda self, owner: 0  # type: ignore[method-assign]


@_host(
    "list-omits-prefix-subscriptions",
    "AWP-SUB-006",
    "leaves prefix subscriptions out of GetSubscriptions",
    "host/subscriptions/add-list-remove",
)
def _sub_006() -> None:
    from reference_host import _subscriptions

    def make(original: Any) -> Any:
        def all_subscriptions(self: Any) -> list[Any]:
            return [s for s in original(self) if not s.HasField("type_prefix_subscription")]

        return all_subscriptions

    replace(_subscriptions.SubscriptionTable, "all", make)


@_host(
    "prefix-matches-exactly",
    "AWP-SUB-010",
    "matches a prefix subscription only when the topic type equals the prefix",
    "host/publish/topic-matching",
)
def _sub_010() -> None:
    from reference_host import _subscriptions

    def agent_types_for(self: Any, topic_type: str) -> tuple[tuple[str, frozenset[str]], ...]:
        found: dict[str, set[str]] = {}
        for agent_type, owners in self._exact.get(topic_type, {}).items():
            found.setdefault(agent_type, set()).update(owners)
        for (prefix, agent_type), owners in self._prefixes.items():
            if topic_type == prefix:
                found.setdefault(agent_type, set()).update(owners)
        return tuple((agent_type, frozenset(owners)) for agent_type, owners in found.items())

    _subscriptions.SubscriptionTable.agent_types_for = agent_types_for  # type: ignore[method-assign]


# -- versions and handshake --------------------------------------------------------------


def _has_unknown_fields(message: Any) -> bool:
    known = type(message)()
    known.CopyFrom(message)
    known.DiscardUnknownFields()
    return bool(known.ByteSize() != message.ByteSize())


@_host(
    "drop-frames-with-unknown-fields",
    "AWP-VER-001",
    "drops a frame whose message carries a field it does not know",
    "host/compat/unknown-fields",
)
def _ver_001() -> None:
    host_inbound(lambda conn, frame: [] if _has_unknown_fields(frame) else [frame])


@_host(
    "reject-unknown-capability",
    "AWP-VER-002",
    "rejects a hello that lists a capability value it does not know",
    "host/compat/unknown-enum-values",
)
def _ver_002() -> None:
    from reference_host import _errors, _handshake

    def make(original: Any) -> Any:
        def parse_hello(raw: Any) -> Any:
            hello = original(raw)
            if hello is not None and any(
                c not in pb.Capability.values() for c in hello.capabilities
            ):
                raise _errors.InvalidArgument("unknown capability in the hello")
            return hello

        return parse_hello

    replace(_handshake, "parse_hello", make)


@_host(
    "v1-path-only",
    "AWP-VER-003",
    "serves only agentworker.v1.AgentRpcService, not the legacy path",
    "host/connection/legacy-path",
)
def _ver_003() -> None:
    from reference_host import _servicer

    replace(_servicer.AgentRpcServicer, "generic_handlers", lambda f: lambda self: f(self)[:1])


@_host(
    "notices-to-legacy-workers",
    "AWP-VER-011",
    "sends notices to legacy workers too",
    "host/handshake/legacy-worker-sees-no-v1-frames",
)
def _ver_011() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def notice(self: Any, conn: Any, *args: Any, **kwargs: Any) -> None:
            v1 = conn.v1
            conn.v1 = True
            try:
                original(self, conn, *args, **kwargs)
            finally:
                conn.v1 = v1

        return notice

    replace(_router.Router, "_notice", make)


@_host(
    "welcome-lists-every-capability",
    "AWP-VER-012",
    "lists every capability it implements in the welcome, asked for or not",
    "host/handshake/welcome",
)
def _ver_012() -> None:
    from reference_host import _handshake

    def make(original: Any) -> Any:
        def welcome(config: Any, capabilities: Any, connection_id: str) -> bytes:
            return bytes(original(config, _handshake.host_capabilities(config), connection_id))

        return welcome

    replace(_handshake, "welcome", make)


@_host(
    "welcome-under-another-key",
    "AWP-VER-013",
    "sends its welcome under a metadata key other than agentworker-welcome-bin",
    "host/handshake/welcome",
)
def _ver_013() -> None:
    from reference_host import _handshake

    _handshake.WELCOME_METADATA_KEY = "agentworker-greeting-bin"  # type: ignore[misc]


@_host(
    "undecodable-hello-is-legacy",
    "AWP-VER-014",
    "treats a hello that does not decode as a legacy worker",
    "host/handshake/bad-hello",
)
def _ver_014() -> None:
    from reference_host import _errors, _handshake

    def make(original: Any) -> Any:
        def parse_hello(raw: Any) -> Any:
            try:
                return original(raw)
            except _errors.InvalidArgument:
                return None

        return parse_hello

    replace(_handshake, "parse_hello", make)


# -- added with spec v1.0 ----------------------------------------------------------------


def _welcome(change: Callable[[pb.ChannelWelcome], None]) -> None:
    """Apply ``change`` to every ChannelWelcome the host sends."""
    from reference_host import _handshake

    def make(original: Any) -> Any:
        def welcome(config: Any, capabilities: frozenset[int], connection_id: str) -> bytes:
            message = pb.ChannelWelcome.FromString(original(config, capabilities, connection_id))
            change(message)
            return message.SerializeToString()

        return welcome

    replace(_handshake, "welcome", make)


@_host(
    "short-channel-wait",
    "AWP-CONN-028",
    "announces a channel wait of one second",
    "host/handshake/welcome",
)
def _conn_028() -> None:
    def change(welcome: pb.ChannelWelcome) -> None:
        welcome.channel_wait_ms = 1000

    _welcome(change)


@_host(
    "no-security-mechanisms",
    "AWP-VER-017",
    "lists no security mechanism in its welcome, whatever is in force",
    "host/security/mutual-tls",
)
def _ver_017() -> None:
    def change(welcome: pb.ChannelWelcome) -> None:
        del welcome.security_mechanisms[:]

    _welcome(change)


@_host(
    "no-calls-in-flight-limit",
    "AWP-FLOW-005",
    "announces a calls-in-flight limit but does not enforce it",
    "host/flow/calls-in-flight-limit",
)
def _flow_005() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self._max_calls = 10**9

        return init

    replace(_router.Router, "__init__", make)


@_host(
    "batches-beyond-worker-limit",
    "AWP-BAT-006",
    "builds batches up to 64 MiB, whatever the worker's max_message_bytes",
    "host/batching/worker-frame-limit",
)
def _bat_006() -> None:
    from reference_host import _handshake, _outbound

    replace(_outbound, "MAX_BATCH_BYTES", lambda original: 64 * 1024 * 1024)
    replace(_handshake, "worker_max_message_bytes", lambda original: lambda hello: 64 << 20)


class _Everyone(frozenset[str]):
    """An owner set that contains every client-id."""

    def __contains__(self, item: object) -> bool:
        return True


@_host(
    "match-foreign-subscriptions",
    "AWP-SUB-013",
    "counts a match at any worker serving the subscription's type, not only at its owner",
    "host/publish/foreign-subscription",
)
def _sub_013() -> None:
    from reference_host import _subscriptions

    def make(original: Any) -> Any:
        def agent_types_for(self: Any, topic_type: str) -> tuple[tuple[str, frozenset[str]], ...]:
            return tuple((agent_type, _Everyone()) for agent_type, _ in original(self, topic_type))

        return agent_types_for

    replace(_subscriptions.SubscriptionTable, "agent_types_for", make)


# -- drain, connections and the control channel (spec v1.0) --------------------------------


@_host(
    "close-with-ok",
    "AWP-CONN-024",
    "ends the data channels with status OK, not UNAVAILABLE, when its grace period ends",
    "host/lifecycle/drain",
    args=("--drain-grace-ms", "1000"),
)
def _conn_024() -> None:
    from reference_host import _router

    def close_all(self: Any) -> None:
        for conn in list(self.connections.values()):
            conn.end()  # flushes what is queued, then ends the call with OK

    _router.Router.close_all = close_all  # type: ignore[method-assign]


@_host(
    "register-while-draining",
    "AWP-CONN-025",
    "accepts RegisterAgent, AddSubscription and RemoveSubscription while it drains",
    "host/lifecycle/drain",
    args=("--drain-grace-ms", "1000"),
)
def _conn_025() -> None:
    from reference_host import _errors, _servicer

    async def data_channel(self: Any, client_id: str) -> Any:
        conn = await self._router.channel_for(client_id, self._channel_wait_s)
        if conn is None or conn.closed:
            raise _errors.FailedPrecondition(f"client {client_id!r} has no open data channel")
        return conn

    _servicer.AgentRpcServicer._data_channel = data_channel  # type: ignore[method-assign]


@_host(
    "half-close-unavailable",
    "AWP-CONN-026",
    "ends a data channel the worker half-closed with UNAVAILABLE, not OK",
    "host/connection/half-close",
)
def _conn_026() -> None:
    import grpc

    from reference_host import _router

    def make(original: Any) -> Any:
        async def read_loop(self: Any, conn: Any, frames: Any) -> None:
            async def watched() -> Any:
                async for frame in frames:
                    yield frame
                # The worker half-closed: cleaned up as usual, but ended with an error.
                conn.terminate(grpc.StatusCode.UNAVAILABLE, "the worker half-closed", flush=True)

            await original(self, conn, watched())

        return read_loop

    replace(_router.Router, "read_loop", make)


@_host(
    "list-waits-for-channel",
    "AWP-CONN-027",
    "makes GetSubscriptions wait the channel wait for the caller's data channel",
    "host/connection/list-without-channel",
)
def _conn_027() -> None:
    from reference_host import _errors, _servicer

    def make(original: Any) -> Any:
        async def get_subscriptions(self: Any, request: Any, context: Any) -> Any:
            metadata = {item[0]: item[1] for item in context.invocation_metadata() or ()}
            try:
                client_id, _ = self._auth.authenticate(metadata)
                if await self._router.channel_for(client_id, self._channel_wait_s) is None:
                    raise _errors.FailedPrecondition(f"client {client_id!r} has no data channel")
            except _errors.HostError as exc:
                await context.abort(_errors.status_code(exc), str(exc))
            return await original(self, request, context)

        return get_subscriptions

    replace(_servicer.AgentRpcServicer, "GetSubscriptions", make)


@_host(
    "control-needs-state",
    "AWP-VER-019",
    "refuses OpenControlChannel unless CAPABILITY_STATE is in force on the client's data channel",
    "host/control/routing",
)
def _ver_019() -> None:
    from reference_host import _control, _errors

    def make(original: Any) -> Any:
        def attach(self: Any, conn: Any) -> None:
            data = self._data.connections.get(conn.client_id)
            if data is None or pb.CAPABILITY_STATE not in data.capabilities:
                raise _errors.FailedPrecondition("CAPABILITY_STATE is not in force")
            original(self, conn)

        return attach

    replace(_control.ControlRouter, "attach", make)


@_host(
    "health-needs-token",
    "AWP-SEC-008",
    "configured with tokens, answers health checks only with a token",
    "host/security/bearer-token",
)
def _sec_008() -> None:
    import grpc

    from reference_host import _health, _security

    with_tokens: list[bool] = []

    def make_init(original: Any) -> Any:
        def init(self: Any, policies: Any) -> None:
            original(self, policies)
            with_tokens.append(bool(self.requires_tokens))

        return init

    def make_check(original: Any) -> Any:
        async def check(self: Any, request: Any, context: Any) -> Any:
            keys = {item[0] for item in context.invocation_metadata() or ()}
            if any(with_tokens) and "authorization" not in keys:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a token is required")
            return await original(self, request, context)

        return check

    replace(_security.Authenticator, "__init__", make_init)
    replace(_health.HealthService, "Check", make_check)


@_host(
    "uncapped-timeouts",
    "AWP-RPC-024",
    "announces max_rpc_timeout_ms but honours and forwards any larger timeout_ms",
    "host/rpc/deadline/cap-announced",
)
def _rpc_024() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self._max_timeout_ms = 0  # the welcome still announces the configured cap

        return init

    replace(_router.Router, "__init__", make)


@_host(
    "blame-target-for-departed-caller",
    "AWP-RPC-025",
    "reports a response whose caller has left to the target with ERROR_CODE_INVALID_REQUEST",
    "host/rpc/caller-gone",
)
def _rpc_025() -> None:
    from reference_host import _rpc

    def make(original: Any) -> Any:
        def forgotten_reason(self: Any, host_id: str, target: Any) -> Any:
            reason = original(self, host_id, target)
            return None if reason == _rpc.REASON_CALLER_GONE else reason

        return forgotten_reason

    replace(_rpc.RpcTable, "forgotten_reason", make)


@_host(
    "lookup-before-drain",
    "AWP-ERR-021",
    "while draining, answers a request for an unserved type with UNKNOWN_TARGET, not SHUTTING_DOWN",
    "host/lifecycle/drain",
    args=("--drain-grace-ms", "1000"),
)
def _err_021() -> None:
    from reference_host import _router

    def make(original: Any) -> Any:
        def request(self: Any, conn: Any, message: Any) -> Any:
            valid = (
                message.request_id
                and message.target.type
                and message.HasField("payload")
                and message.request_id not in conn.outgoing
            )
            if (
                valid
                and self.draining
                and self._registry.lookup(message.target.type, message.target.key) is None
            ):
                return self._reply_error(
                    conn,
                    message.request_id,
                    pb.ERROR_CODE_UNKNOWN_TARGET,
                    f"no worker serves agent type {message.target.type!r}",
                )
            return original(self, conn, message)

        return request

    replace(_router.Router, "_request", make)


@_host(
    "drop-half-the-owed-frames",
    "AWP-FLOW-007",
    "drops every second frame it owes a worker whose queue is full (holding the rest)",
    "host/flow/owed-errors",
)
def _flow_007() -> None:
    from reference_host import _outbound

    owed = [0]

    def make(original: Any) -> Any:
        def owe(self: Any, item: Any) -> None:
            if not self._control and (self._owed or len(self._queue) >= self._limit):
                owed[0] += 1
                if owed[0] % 2:
                    return
            original(self, item)

        return owe

    replace(_outbound.Outbound, "owe", make)


@_host(
    "read-despite-owed-frames",
    "AWP-FLOW-008",
    "keeps reading a connection while frames it owes that connection are held back",
    "host/flow/owed-errors",
)
def _flow_008() -> None:
    from reference_host import _control, _router

    class NeverBacklogged:
        """A connection's outbound queue as the reader sees it: never holding frames back."""

        backlogged = False

        def __init__(self, outbound: Any) -> None:
            self._outbound = outbound

        def __getattr__(self, name: str) -> Any:
            return getattr(self._outbound, name)

    class ReaderView:
        """The connection as the read loop sees it, with the outbound view above."""

        def __init__(self, conn: Any) -> None:
            self._conn = conn
            self.outbound = NeverBacklogged(conn.outbound)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

    def make(original: Any) -> Any:
        async def read_frames(conn: Any, *args: Any, **kwargs: Any) -> None:
            await original(ReaderView(conn), *args, **kwargs)

        return read_frames

    replace(_router, "read_frames", make)
    replace(_control, "read_frames", make)


@_host(
    "stall-answering-departed-target",
    "AWP-FLOW-009",
    "answers the calls pending at a departed worker while holding the event loop, 5 ms a call",
    "host/flow/calls-in-flight-limit",
)
def _flow_009() -> None:
    import time

    from reference_host import _rpc

    def make(original: Any) -> Any:
        def fail_target(self: Any, target: Any) -> list[Any]:
            calls: list[Any] = original(self, target)
            if len(calls) > 100:
                time.sleep(0.005 * len(calls))  # the whole host waits meanwhile
            return calls

        return fail_target

    replace(_rpc.RpcTable, "fail_target", make)


@_host(
    "slow-consumer-timeout-40s",
    "AWP-FLOW-021",
    "waits 40 s, beyond the 20 s bound, before it ends a slow consumer",
    "host/flow/slow-consumer",
)
def _flow_021() -> None:
    from reference_host import _config

    def make(original: Any) -> Any:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            object.__setattr__(self, "slow_consumer_timeout_ms", 40_000)

        return init

    replace(_config.HostConfig, "__init__", make)


def _is_v1_form(frame: pb.OpenControlChannelRequest) -> bool:
    return frame.rpc_message.type_url.rpartition("/")[2].startswith("agentworker.v1.")


@_host(
    "control-errors-in-request-form",
    "AWP-CTL-006",
    "answers a control request it cannot route in the type-URL form of the request, not the "
    "form its requester speaks",
    "host/control/without-data-channel",
)
def _ctl_006() -> None:
    from reference_host import _control

    forms: list[bool] = []  # the form of the request being handled

    def make_handle(original: Any) -> Any:
        def handle(self: Any, conn: Any, frame: Any) -> None:
            forms.append(_is_v1_form(frame))
            try:
                original(self, conn, frame)
            finally:
                forms.pop()

        return handle

    def make_fail(original: Any) -> Any:
        def fail(self: Any, pending: Any, code: int, text: str) -> None:
            if not forms:
                original(self, pending, code, text)
                return
            form = forms[-1]
            self.is_v1 = lambda client_id: form
            try:
                original(self, pending, code, text)
            finally:
                del self.is_v1

        return fail

    replace(_control.ControlRouter, "handle", make_handle)
    replace(_control.ControlRouter, "_fail", make_fail)


@_host(
    "second-control-channel-replaces",
    "AWP-CTL-007",
    "a second OpenControlChannel for a client-id replaces its open control channel",
    "host/control/without-data-channel",
)
def _ctl_007() -> None:
    from reference_host import _control

    replace(_control.ControlRouter, "attach", _replacing_attach)
