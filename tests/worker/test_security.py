"""TLS, mutual TLS and bearer tokens against the reference host (section 6)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from reference_host import Host, HostConfig, TokenPolicy
from reference_host import TlsConfig as HostTls
from reference_worker import AgentId, HostConnectionError, TlsConfig, Worker
from tests.pki import SERVER_NAME, make_ca
from tests.worker.agents import Answer, Echo, Question

pytestmark = pytest.mark.asyncio


async def _serve(config: HostConfig) -> Host:
    host = Host(address="127.0.0.1:0", config=config)
    await host.start()
    return host


async def _round_trip(address: str, **kwargs: object) -> None:
    server = Worker(address, **kwargs)  # type: ignore[arg-type]
    client = Worker(address, **kwargs)  # type: ignore[arg-type]
    try:
        await server.register("echo", Echo)
        await server.start()
        await client.start()
        client.add_message_type(Answer)
        assert await client.send(Question("s"), AgentId("echo", "k"), timeout=10) == Answer("k: s")
    finally:
        await client.stop(grace=1.0)
        await server.stop(grace=1.0)


@pytest_asyncio.fixture
async def tls_host(certs: pathlib.Path) -> AsyncIterator[Host]:
    tls = HostTls.from_files(certs / "server.pem", certs / "server.key")
    host = await _serve(HostConfig(tls=tls, metrics_log_interval_s=0))
    yield host
    await host.stop(grace=0.5)


@pytest.mark.requirement("AWP-SEC-001")
async def test_tls_with_server_name_override(tls_host: Host, certs: pathlib.Path) -> None:
    tls = TlsConfig.from_files(ca=certs / "ca.pem", server_name=SERVER_NAME)
    await _round_trip(f"127.0.0.1:{tls_host.port}", tls=tls)


async def test_tls_with_an_untrusted_ca_is_refused(
    tls_host: Host, certs: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    tls = TlsConfig.from_files(ca=make_ca(tmp_path, "other"), server_name=SERVER_NAME)
    worker = Worker(f"127.0.0.1:{tls_host.port}", tls=tls, reconnect=False)
    with pytest.raises(HostConnectionError):
        await worker.start()


@pytest.mark.requirement("AWP-SEC-003")
async def test_mutual_tls(certs: pathlib.Path) -> None:
    tls = HostTls.from_files(certs / "server.pem", certs / "server.key", certs / "ca.pem")
    host = await _serve(HostConfig(tls=tls, metrics_log_interval_s=0))
    address = f"127.0.0.1:{host.port}"
    try:
        client_tls = TlsConfig.from_files(
            certs / "ca.pem", certs / "client.pem", certs / "client.key", SERVER_NAME
        )
        await _round_trip(address, tls=client_tls)
        anonymous = Worker(
            address,
            tls=TlsConfig.from_files(ca=certs / "ca.pem", server_name=SERVER_NAME),
            reconnect=False,
        )
        with pytest.raises(HostConnectionError):
            await anonymous.start()
    finally:
        await host.stop(grace=0.5)


@pytest.mark.requirement("AWP-SEC-005")
async def test_bearer_token_on_every_call() -> None:
    policies = (TokenPolicy("token-a", "worker-a"), TokenPolicy("token-b", "worker-b"))
    host = await _serve(HostConfig(tokens=policies, metrics_log_interval_s=0))
    address = f"127.0.0.1:{host.port}"
    try:
        server = Worker(address, client_id="worker-a", token="token-a")
        client = Worker(address, client_id="worker-b", token="token-b")
        try:
            await server.register("echo", Echo)
            await server.start()
            await client.start()
            client.add_message_type(Answer)
            reply = await client.send(Question("t"), AgentId("echo", "k"), timeout=10)
            assert reply == Answer("k: t")
        finally:
            await client.stop(grace=1.0)
            await server.stop(grace=1.0)
        intruder = Worker(address, client_id="worker-c", token="wrong", reconnect=False)
        with pytest.raises(HostConnectionError):
            await intruder.start()
    finally:
        await host.stop(grace=0.5)
