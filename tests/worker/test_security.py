"""TLS, mutual TLS and bearer tokens against the reference host (section 6)."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from reference_host import Host, HostConfig, TokenPolicy
from reference_host import TlsConfig as HostTls
from reference_worker import AgentId, HostConnectionError, TlsConfig, Worker
from tests.worker.agents import Answer, Echo, Question

pytestmark = pytest.mark.asyncio

SERVER_NAME = "host.agentworker.test"


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(directory: pathlib.Path, name: str, subject: str, extension: str) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}",
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extension)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("certs")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=agentworker test CA",
        cwd=directory,
    )  # fmt: skip
    _issue(directory, "server", SERVER_NAME, f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1\n")
    _issue(directory, "client", "worker", "extendedKeyUsage=clientAuth\n")
    return directory


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
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=other",
        cwd=tmp_path,
    )  # fmt: skip
    tls = TlsConfig.from_files(ca=tmp_path / "other.pem", server_name=SERVER_NAME)
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
