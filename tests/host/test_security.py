"""TLS, mutual TLS and bearer tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from agentworker.v1 import agentworker_pb2 as pb
from reference_host import HostConfig, TlsConfig, TokenPolicy
from tests.host._raw import Api, Closed, RawWorker, hello
from tests.host.conftest import StartHost

TOKENS = (
    TokenPolicy(token="alpha-secret", client_id="alpha"),
    TokenPolicy(token="beta-secret", client_id="beta", agent_types=frozenset({"allowed"})),
)


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _open_code(
    channel: grpc.aio.Channel, client_id: str, extra: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode | None:
    try:
        await RawWorker(channel, client_id, extra_metadata=extra).open(hello())
    except Closed as exc:
        return exc.code
    return grpc.StatusCode.OK


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-005")
async def test_tokens_are_required_and_bound_to_the_client_id(start_host: StartHost) -> None:
    host = await start_host(tokens=TOKENS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        assert await _open_code(channel, "alpha") == grpc.StatusCode.UNAUTHENTICATED
        assert (
            await _open_code(channel, "alpha", _bearer("wrong")) == grpc.StatusCode.UNAUTHENTICATED
        )
        assert (
            await _open_code(channel, "alpha", (("authorization", "Basic alpha-secret"),))
            == grpc.StatusCode.UNAUTHENTICATED
        )
        assert (
            await _open_code(channel, "beta", _bearer("alpha-secret"))
            == grpc.StatusCode.PERMISSION_DENIED
        )
        api = Api(channel)
        for metadata, code in (
            ((("client-id", "alpha"),), grpc.StatusCode.UNAUTHENTICATED),
            ((("client-id", "beta"), *_bearer("alpha-secret")), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await api.get_subscriptions(metadata)
            assert info.value.code() == code
        worker = await RawWorker(channel, "alpha", extra_metadata=_bearer("alpha-secret")).open(
            hello(pb.CAPABILITY_BEARER_TOKEN)
        )
        assert worker.welcome is not None
        assert pb.CAPABILITY_BEARER_TOKEN in worker.welcome.capabilities
        await worker.register("anything")
        await worker.close()


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-006")
async def test_token_limits_the_agent_types_a_client_may_register(
    start_host: StartHost,
) -> None:
    host = await start_host(tokens=TOKENS)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        worker = await RawWorker(channel, "beta", extra_metadata=_bearer("beta-secret")).open(
            hello()
        )
        await worker.register("allowed")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await worker.register("forbidden")
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "forbidden" in (info.value.details() or "")
        await worker.close()


def _tls(certs: Path, *, mutual: bool) -> TlsConfig:
    return TlsConfig.from_files(
        certs / "server.pem", certs / "server.key", certs / "ca.pem" if mutual else None
    )


@pytest_asyncio.fixture
async def tls_host_port(start_host: StartHost, certs: Path) -> int:
    host = await start_host(HostConfig(tls=_tls(certs, mutual=False), metrics_log_interval_s=0))
    return host.port


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-001")
async def test_tls_host_serves_tls_clients_only(tls_host_port: int, certs: Path) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_host_port}", credentials) as channel:
        worker = await RawWorker(channel, "tls-worker").open(hello(pb.CAPABILITY_TLS))
        assert worker.welcome is not None
        assert list(worker.welcome.capabilities) == [pb.CAPABILITY_TLS]
        await worker.register("secure")
        await worker.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_host_port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(Api(plain).get_subscriptions((("client-id", "x"),)), 30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
@pytest.mark.requirement("AWP-SEC-003")
async def test_mutual_tls_requires_a_client_certificate(start_host: StartHost, certs: Path) -> None:
    host = await start_host(HostConfig(tls=_tls(certs, mutual=True), metrics_log_interval_s=0))
    root = (certs / "ca.pem").read_bytes()
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=(certs / "client.key").read_bytes(),
        certificate_chain=(certs / "client.pem").read_bytes(),
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{host.port}", with_cert) as channel:
        worker = await RawWorker(channel, "mtls").open(
            hello(pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS)
        )
        assert worker.welcome is not None
        assert set(worker.welcome.capabilities) == {pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS}
        await worker.register("mutual")
        await worker.close()
    without_cert = grpc.ssl_channel_credentials(root_certificates=root)
    async with grpc.aio.secure_channel(f"127.0.0.1:{host.port}", without_cert) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(Api(channel).get_subscriptions((("client-id", "x"),)), 30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
