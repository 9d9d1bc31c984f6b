"""Host cases: TLS, mutual TLS and bearer tokens. A host serves these only when configured
for them, so each case starts the command given for its mechanism (`--tls-command`,
`--mtls-command`, `--token-command`; spec 16.3) with fresh material, runs against that host
and stops it. Without the command the case is not claimed."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from agentworker.v1 import agentworker_pb2 as pb
from conformance._cases import Level
from conformance._host_context import HostContext
from conformance._secure_host import SecureHost, TokenEntry
from conformance._tls_probe import client_context, offers_nothing, tls_connect
from conformance._worker import RawWorker
from conformance.host_cases._registry import host_case

__all__: list[str] = []

_MODERN_VERSIONS = ("TLSv1.2", "TLSv1.3")


def _on(
    ctx: HostContext,
    host: SecureHost,
    label: str,
    *,
    client: str | None = "harness",
    plaintext: bool = False,
    client_id: str | None = None,
    token: str | None = None,
    capabilities: tuple[int, ...] = (),
) -> RawWorker:
    """Create a raw worker for ``host``: TLS with the given client certificate unless
    ``plaintext``, with ``client_id`` (a fresh one when None) and ``token``."""
    return ctx.worker(
        label,
        client_id=client_id if client_id is not None else ctx.unique(f"client-{label}"),
        hello=ctx.hello(capabilities),
        legacy_path=False,
        address=host.address,
        credentials=None if plaintext else host.credentials(client),
        token=token,
    )


async def _open_ok(
    ctx: HostContext,
    worker: RawWorker,
    *capabilities: int,
    mechanisms: tuple[int, ...] | None = None,
) -> None:
    """Open ``worker``'s data channel and fail unless it gets a welcome listing
    ``capabilities`` (and exactly the security ``mechanisms``, when given) and the channel
    stays open."""
    await worker.open()
    ctx.check(
        worker.welcome is not None,
        f"{worker.label}: no welcome on OpenChannel "
        f"({worker.data.end_code.name if worker.data.end_code else 'no status'} "
        f"{worker.data.end_details!r})",
    )
    assert worker.welcome is not None
    for capability in capabilities:
        ctx.check(
            capability in worker.welcome.capabilities,
            f"{worker.label}: the welcome does not list {pb.Capability.Name(capability)}",
        )
    if mechanisms is not None:
        listed = sorted(pb.SecurityMechanism.Name(m) for m in worker.welcome.security_mechanisms)
        wanted = sorted(pb.SecurityMechanism.Name(m) for m in mechanisms)
        # A step of its own: the mechanisms listed decide AWP-VER-017, not the step around.
        ctx.decide(
            "AWP-VER-017",
            "the welcome lists the security mechanisms in force",
            listed == wanted,
            f"{worker.label}: the welcome's security_mechanisms are {listed}, expected {wanted}",
        )
    ctx.check(not worker.data.ended, f"{worker.label}: the host ended the data channel")


async def _refused(ctx: HostContext, worker: RawWorker, expected: grpc.StatusCode) -> None:
    """Fail unless both OpenChannel and RegisterAgent of ``worker`` end with ``expected``."""
    await worker.open(welcome_timeout=3.0)
    code = await worker.data.wait_end()
    ctx.check(
        code is expected,
        f"{worker.label}: OpenChannel: expected {expected.name}, got "
        f"{code.name if code else 'an open channel'} {worker.data.end_details!r}",
    )
    result = await worker.register_status(ctx.unique("denied"))
    ctx.check_status(result, expected, f"{worker.label}: RegisterAgent")


@host_case(
    "host/security/tls",
    requirements=["AWP-SEC-001", "AWP-CNF-020", "AWP-VER-017"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_TLS,
    v1_only=True,
)
async def tls(ctx: HostContext) -> None:
    """Procedure: (--tls-command) start the TLS host with the harness's certificate for
    `localhost`/127.0.0.1; open a data channel over TLS, verifying the host against the
    harness CA, with a hello listing CAPABILITY_TLS, and register a type; then call
    RegisterAgent over a plaintext connection.

    Asserts: the TLS handshake succeeds, the welcome lists CAPABILITY_TLS, its
    security_mechanisms list exactly SECURITY_MECHANISM_TLS, and the registration succeeds;
    a second TLS channel whose hello lists no capability gets a welcome without CAPABILITY_TLS
    but still with SECURITY_MECHANISM_TLS; the plaintext call fails."""
    with ctx.step("AWP-CNF-020", "the host started from the command serves", gate=True):
        host = await ctx.secure_host(pb.CAPABILITY_TLS)
    tls_only = (pb.SECURITY_MECHANISM_TLS,)
    with ctx.step("AWP-SEC-001", "the TLS host serves TLS only"):
        worker = _on(ctx, host, "tls", client=None, capabilities=(pb.CAPABILITY_TLS,))
        await _open_ok(ctx, worker, pb.CAPABILITY_TLS, mechanisms=tls_only)
        await worker.register(ctx.unique("tls"))
        plain = _on(ctx, host, "plaintext", plaintext=True)
        code, _ = await plain.register_status(ctx.unique("plain"))
        ctx.check(
            code is not grpc.StatusCode.OK,
            "a plaintext RegisterAgent succeeded on the TLS host (AWP-SEC-001)",
        )
    with ctx.step("AWP-VER-017", "security mechanisms are stated apart from capabilities"):
        quiet = _on(ctx, host, "tls-no-caps", client=None)
        await _open_ok(ctx, quiet, mechanisms=tls_only)
        assert quiet.welcome is not None
        ctx.check(
            pb.CAPABILITY_TLS not in quiet.welcome.capabilities,
            "the welcome lists CAPABILITY_TLS although the hello did not",
        )


@host_case(
    "host/security/tls-version",
    requirements=["AWP-SEC-001"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_TLS,
    v1_only=True,
)
async def tls_version(ctx: HostContext) -> None:
    """Procedure: (--tls-command) start the TLS host; make a raw TLS connection offering only
    TLS 1.0 and 1.1, and one offering TLS 1.2 or later, each verifying the host against the
    harness CA and sending the HTTP/2 preface.

    Asserts: the TLS 1.0/1.1 handshake fails; the other succeeds with TLS 1.2 or 1.3 and the
    host answers the preface. (When this machine's OpenSSL cannot offer TLS 1.1 the first
    check is noted in the trace and left out.)"""
    with ctx.step("AWP-CNF-020", "the host started from the command serves", gate=True):
        host = await ctx.secure_host(pb.CAPABILITY_TLS)
    with ctx.step("AWP-SEC-001", "TLS 1.2 or later only"):
        assert host.certs is not None
        within = ctx.seconds(5.0)
        modern = await tls_connect(host.address, client_context(host.certs.ca), within)
        ctx.trace.note("tls", f"TLS 1.2+: version {modern.version}, {modern.error or 'served'}")
        ctx.check(
            modern.version in _MODERN_VERSIONS and modern.served,
            f"a TLS 1.2+ connection was not served: version {modern.version}, {modern.error}",
        )
        old = await tls_connect(
            host.address, client_context(host.certs.ca, legacy_only=True), within
        )
        ctx.trace.note("tls", f"TLS 1.0/1.1: version {old.version}, {old.error or 'served'}")
        if offers_nothing(old):
            ctx.trace.note("tls", "this machine's OpenSSL cannot offer TLS 1.1: not checked")
            return
        ctx.check(
            old.version is None,
            f"the host completed a {old.version} handshake (AWP-SEC-001 requires TLS 1.2 or later)",
        )


@host_case(
    "host/security/mutual-tls",
    requirements=["AWP-SEC-003", "AWP-CNF-020", "AWP-VER-017"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_MUTUAL_TLS,
    v1_only=True,
)
async def mutual_tls(ctx: HostContext) -> None:
    """Procedure: (--mtls-command) start the host with the harness's certificate and client
    CA; connect over TLS without a client certificate, then with one another CA signed (a
    raw TLS connection sending the HTTP/2 preface, and a RegisterAgent call, each); then with
    a certificate the client CA signed, open a data channel listing CAPABILITY_TLS and
    CAPABILITY_MUTUAL_TLS and register a type (its welcome's security_mechanisms list exactly
    TLS and MUTUAL_TLS).

    Asserts: without a certificate and with the foreign one the raw connection gets no
    HTTP/2 bytes and the call fails with UNAVAILABLE (the host refused the TLS handshake, not
    a call); with the right certificate the welcome lists both capabilities and the
    registration succeeds."""
    with ctx.step("AWP-CNF-020", "the host started from the command serves", gate=True):
        host = await ctx.secure_host(pb.CAPABILITY_MUTUAL_TLS)
    with ctx.step("AWP-SEC-003", "only clients with a certificate the client CA signed are served"):
        assert host.certs is not None
        within = ctx.seconds(5.0)
        rogue_pair = (host.certs.rogue_client_cert, host.certs.rogue_client_key)
        for label, client, pair in (("no-cert", None, None), ("foreign-cert", "rogue", rogue_pair)):
            raw = await tls_connect(host.address, client_context(host.certs.ca, cert=pair), within)
            ctx.trace.note(label, f"raw TLS: version {raw.version}, {raw.error or 'served'}")
            ctx.check(
                not raw.served,
                f"{label}: the host completed the handshake and served HTTP/2 to a client "
                "without a certificate its client CA signed (AWP-SEC-003)",
            )
            worker = _on(ctx, host, label, client=client)
            result = await worker.register_status(ctx.unique(label))
            ctx.check_status(result, grpc.StatusCode.UNAVAILABLE, f"{label}: RegisterAgent")
        both = (pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS)
        worker = _on(ctx, host, "client-cert", capabilities=both)
        mutual = (pb.SECURITY_MECHANISM_TLS, pb.SECURITY_MECHANISM_MUTUAL_TLS)
        await _open_ok(ctx, worker, *both, mechanisms=mutual)
        await worker.register(ctx.unique("mtls"))


@host_case(
    "host/security/bearer-token",
    requirements=["AWP-SEC-005", "AWP-CNF-020", "AWP-SEC-008", "AWP-VER-017"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_BEARER_TOKEN,
    v1_only=True,
)
async def bearer_token(ctx: HostContext) -> None:
    """Procedure: (--token-command) start the host (plaintext, on loopback) with a token file
    binding token A to client-id A and token B to client-id B; for each of: no
    `authorization` metadata, an unknown token, token B with client-id A, open a data
    channel and call RegisterAgent; then with token A and client-id A open a data channel
    listing CAPABILITY_BEARER_TOKEN, register a type and add a subscription.

    Asserts: the missing and the unknown token are refused with UNAUTHENTICATED, the token
    bound to another client-id with PERMISSION_DENIED (OpenChannel and RegisterAgent each);
    the right token gets a welcome whose security_mechanisms list exactly BEARER_TOKEN, and
    both calls succeed; a health check without a token and without a client-id is answered
    SERVING."""
    client_a, client_b = ctx.unique("client-a"), ctx.unique("client-b")
    token_a, token_b = ctx.unique("token-a"), ctx.unique("token-b")
    with ctx.step("AWP-CNF-020", "the host started from the command serves", gate=True):
        host = await ctx.secure_host(
            pb.CAPABILITY_BEARER_TOKEN,
            (TokenEntry(token_a, client_a), TokenEntry(token_b, client_b)),
        )
    with ctx.step("AWP-SEC-005", "tokens are checked and bound to their client-id"):
        for label, token, expected in (
            ("no-token", None, grpc.StatusCode.UNAUTHENTICATED),
            ("unknown-token", ctx.unique("token-unknown"), grpc.StatusCode.UNAUTHENTICATED),
            ("other-clients-token", token_b, grpc.StatusCode.PERMISSION_DENIED),
        ):
            worker = _on(ctx, host, label, client_id=client_a, token=token)
            await _refused(ctx, worker, expected)
            await worker.close()  # frees client-id A for the next attempt
        worker = _on(
            ctx, host, "token-a", client_id=client_a, token=token_a,
            capabilities=(pb.CAPABILITY_BEARER_TOKEN,),
        )  # fmt: skip
        await _open_ok(ctx, worker, mechanisms=(pb.SECURITY_MECHANISM_BEARER_TOKEN,))
        agent_type = ctx.unique("token")
        await worker.register(agent_type)
        topic = ctx.unique("topic")
        await worker.subscribe(
            pb.Subscription(
                id=ctx.unique("sub"),
                type_subscription=pb.TypeSubscription(topic_type=topic, agent_type=agent_type),
            )
        )
    probe = _on(ctx, host, "probe", plaintext=True)
    code, details, health = await probe.unary(
        "",
        health_pb2.HealthCheckRequest(service=""),
        health_pb2.HealthCheckResponse,
        metadata=[],
        path="/grpc.health.v1.Health/Check",
    )
    ctx.decide(
        "AWP-SEC-008",
        "a health check needs no token",
        code is grpc.StatusCode.OK
        and health is not None
        and health.status == health_pb2.HealthCheckResponse.SERVING,
        f"a health check without token or client-id got {code.name} {details!r}",
    )


@host_case(
    "host/security/token-agent-types",
    requirements=["AWP-SEC-006", "AWP-CNF-020"],
    level=Level.CAPABILITY,
    capability=pb.CAPABILITY_BEARER_TOKEN,
    v1_only=True,
)
async def token_agent_types(ctx: HostContext) -> None:
    """Procedure: (--token-command) start the host with a token file entry whose
    `agent_types` lists only type T; with that token open a data channel, register a type
    other than T, then T.

    Asserts: the other type is refused with PERMISSION_DENIED; T is registered."""
    client_id, token = ctx.unique("client"), ctx.unique("token")
    allowed, other = ctx.unique("allowed"), ctx.unique("other")
    with ctx.step("AWP-CNF-020", "the host started from the command serves", gate=True):
        host = await ctx.secure_host(
            pb.CAPABILITY_BEARER_TOKEN, (TokenEntry(token, client_id, (allowed,)),)
        )
    with ctx.step("AWP-SEC-006", "a token limits the agent types it may register"):
        worker = _on(ctx, host, "limited", client_id=client_id, token=token)
        await _open_ok(ctx, worker)
        result = await worker.register_status(other)
        ctx.check_status(result, grpc.StatusCode.PERMISSION_DENIED, f"RegisterAgent {other!r}")
        await worker.register(allowed)
