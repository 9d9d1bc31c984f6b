"""Worker cases: TLS, mutual TLS and bearer tokens. Each starts a second instance of the
worker against a second harness host configured for the mechanism, with the AGENTWORKER_TLS_*
or AGENTWORKER_TOKEN variables of spec 16.1 (spawn mode only). A worker announces these
capabilities only on connections that use them, so these cases run when the worker's hello
declares the capability or the run claims it (`--claim`)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import CaseFailure, Level
from conformance._certs import SERVER_NAME, CertificateError, Certificates, make_certificates
from conformance._harness_host import Connection, HarnessHost
from conformance._payloads import JSON, json_ping_payload
from conformance._subject import SubjectError
from conformance._worker_context import WorkerContext
from conformance._worker_subject import WorkerSubject
from conformance.worker_cases._registry import worker_case
from conformance.worker_cases._rpc import check_pong

__all__: list[str] = []


def certificates(ctx: WorkerContext) -> Certificates:
    """Make throwaway certificates, failing the case when they cannot be written."""
    try:
        return make_certificates()
    except CertificateError as exc:
        raise CaseFailure(f"cannot make test certificates: {exc}") from exc


def server_credentials(key: str, cert: str, client_ca: str | None = None) -> grpc.ServerCredentials:
    """Return TLS server credentials (requiring client certificates from ``client_ca``)."""
    return grpc.ssl_server_credentials(
        [(Path(key).read_bytes(), Path(cert).read_bytes())],
        root_certificates=Path(client_ca).read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )


async def second_worker(
    ctx: WorkerContext,
    env: dict[str, str],
    credentials: grpc.ServerCredentials | None,
    *,
    connect_timeout_s: float = 10.0,
    strict: bool = True,
    host: HarnessHost | None = None,
) -> WorkerSubject:
    """Start another instance of the worker against a new harness host; when it does not
    connect, fail the case (``strict``) or raise SubjectError."""
    ctx.need_process_control("starting the worker with other settings")
    assert ctx.subject.command is not None
    extra = WorkerSubject(
        ctx.subject.command,
        scale=ctx.scale,
        env=env,
        credentials=credentials,
        connect_timeout_s=connect_timeout_s,
        host=host,
    )
    ctx.extras.append(extra)
    extra.host.trace = ctx.trace
    try:
        await extra.start()
    except SubjectError as exc:
        if not strict:
            raise
        names = ", ".join(sorted(env)) or "no variables"
        raise CaseFailure(f"the worker started with {names} did not connect: {exc}") from exc
    return extra


async def ready_and_ping(ctx: WorkerContext, extra: WorkerSubject) -> Connection:
    """Wait until the second worker is ready and answers a Ping; return its channel."""
    sub = WorkerContext(subject=extra, scale=ctx.scale, trace=ctx.trace)
    conn = await sub.ready()
    check_pong(ctx, await sub.rpc(conn, json_ping_payload("secure", 1)), JSON, "secure", 1, "k")
    return conn


def announced(ctx: WorkerContext, conn: Connection, *capabilities: int) -> None:
    """Fail unless the hello announces every one of ``capabilities`` (AWP-VER-016)."""
    caps = set(conn.hello.capabilities) if conn.hello is not None else set()
    for capability in capabilities:
        ctx.check(
            capability in caps,
            f"the hello on this connection does not announce {pb.Capability.Name(capability)} "
            "(AWP-VER-016)",
        )


# The shortest time the third worker of worker/security/tls is given to call the rogue host.
_REFUSAL_WINDOW_S = 3.0


@worker_case(
    "worker/security/tls",
    requirements=["AWP-SEC-001", "AWP-VER-016", "AWP-CNF-001"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_TLS,
)
async def tls(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) make a CA and a host certificate for `localhost`/127.0.0.1;
    start a TLS harness host and a second worker with AGENTWORKER_TLS_CA and
    AGENTWORKER_TLS_SERVER_NAME=localhost; send it a Ping. Then start a TLS host whose
    certificate another CA signed, and a third worker with the same settings.

    Asserts: the second worker connects over TLS, registers, announces CAPABILITY_TLS and
    answers the Ping; the third worker makes no call on the host it cannot verify (within
    3 s, scaled, or three times as long as the second worker took to start and connect,
    whichever is longer)."""
    certs = certificates(ctx)
    try:
        env = {"AGENTWORKER_TLS_CA": str(certs.ca), "AGENTWORKER_TLS_SERVER_NAME": SERVER_NAME}
        creds = server_credentials(str(certs.server_key), str(certs.server_cert))
        with ctx.step(
            ("AWP-SEC-001", "AWP-CNF-001"),
            "connects over TLS with AGENTWORKER_TLS_CA and answers a Ping",
            gate=True,
        ):
            started = time.monotonic()
            extra = await second_worker(ctx, env, creds)
            conn = await ready_and_ping(ctx, extra)
            # How long a worker took to start and connect on this machine just now: the
            # third worker gets three times as long, so a loaded machine does not pass a
            # worker that connects late for refusing.
            took_s = time.monotonic() - started
        announced(ctx, conn, pb.CAPABILITY_TLS)
        rogue = server_credentials(str(certs.rogue_server_key), str(certs.rogue_server_cert))
        window_s = max(_REFUSAL_WINDOW_S, 3 * took_s)
        try:
            third = await second_worker(ctx, env, rogue, connect_timeout_s=window_s, strict=False)
        except SubjectError:
            # No channel opened, or the worker gave up: both are right.
            ctx.decide("AWP-SEC-001", "refuses a host its CA did not sign", True, "")
            return
        calls = [call.method for call in third.host.calls]
        ctx.decide(
            "AWP-SEC-001",
            "refuses a host its CA did not sign",
            False,
            f"the worker made calls {calls} on a host whose certificate its CA did not sign "
            "(AWP-SEC-001)",
        )
    finally:
        certs.cleanup()


@worker_case(
    "worker/security/mutual-tls",
    requirements=["AWP-SEC-003", "AWP-VER-016"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_MUTUAL_TLS,
)
async def mutual_tls(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) start a TLS harness host that requires a client certificate
    signed by the test CA, and a second worker with AGENTWORKER_TLS_CA,
    AGENTWORKER_TLS_SERVER_NAME, AGENTWORKER_TLS_CERT and AGENTWORKER_TLS_KEY; send a Ping.

    Asserts: the worker presents its certificate (the handshake succeeds and it registers),
    announces CAPABILITY_TLS and CAPABILITY_MUTUAL_TLS, and answers the Ping."""
    certs = certificates(ctx)
    try:
        env = {
            "AGENTWORKER_TLS_CA": str(certs.ca),
            "AGENTWORKER_TLS_SERVER_NAME": SERVER_NAME,
            "AGENTWORKER_TLS_CERT": str(certs.client_cert),
            "AGENTWORKER_TLS_KEY": str(certs.client_key),
        }
        creds = server_credentials(str(certs.server_key), str(certs.server_cert), str(certs.ca))
        with ctx.step(
            "AWP-SEC-003", "presents its client certificate and answers a Ping", gate=True
        ):
            extra = await second_worker(ctx, env, creds)
            conn = await ready_and_ping(ctx, extra)
        announced(ctx, conn, pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS)
    finally:
        certs.cleanup()


@worker_case(
    "worker/security/bearer-token",
    requirements=["AWP-SEC-005", "AWP-VER-016"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_BEARER_TOKEN,
)
async def bearer_token(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) start a second worker with AGENTWORKER_TOKEN=tok-… against a
    (loopback, plaintext) harness host; send a Ping.

    Asserts: every call the worker makes (OpenChannel, OpenControlChannel, RegisterAgent,
    AddSubscription, ...) carries metadata `authorization: Bearer tok-…`; the hello announces
    CAPABILITY_BEARER_TOKEN; the Ping is answered."""
    token = ctx.unique("tok")
    extra = await second_worker(ctx, {"AGENTWORKER_TOKEN": token}, None)
    conn = await ready_and_ping(ctx, extra)
    wrong = [
        f"{call.method}: {call.authorization!r}"
        for call in extra.host.calls
        if call.authorization != f"Bearer {token}"
    ]
    ctx.check(not wrong, f"calls without `authorization: Bearer <token>`: {wrong} (AWP-SEC-005)")
    announced(ctx, conn, pb.CAPABILITY_BEARER_TOKEN)


@worker_case(
    "worker/security/certificate-without-key",
    requirements=["AWP-CNF-025", "AWP-CNF-001"],
)
async def certificate_without_key(ctx: WorkerContext) -> None:
    """Procedure: (spawn mode) start a second worker with AGENTWORKER_TLS_CERT (a valid client
    certificate) but no AGENTWORKER_TLS_KEY, against a plaintext harness host; wait up to
    20 s (scaled) for a call or an exit (a correct worker exits at once: the wait only
    bounds a worker that hangs).

    Asserts: the worker makes no call and exits with a non-zero status on its own (it refuses
    to start rather than connect without its certificate)."""
    certs = certificates(ctx)
    try:
        env = {"AGENTWORKER_TLS_CERT": str(certs.client_cert)}
        try:
            extra = await second_worker(ctx, env, None, connect_timeout_s=20.0, strict=False)
        except SubjectError as exc:
            ctx.check(
                "before connecting" in str(exc) and "status 0 " not in str(exc),
                f"the worker did not refuse to start on its own: {exc} (AWP-CNF-025)",
            )
            return
        calls = [call.method for call in extra.host.calls]
        raise CaseFailure(
            f"the worker started without AGENTWORKER_TLS_KEY and made calls {calls} (AWP-CNF-025)"
        )
    finally:
        certs.cleanup()
