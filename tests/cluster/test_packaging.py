"""The cluster is optional: a single-process host loads nothing of NATS; flags are checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference_host import Host, HostConfig, _cli
from reference_host._cli import build_config, build_parser
from reference_host._config import ClusterConfig
from reference_host.cluster.nats_server import NatsServer
from tests.pki import make_test_pki

_PROBE = """
import asyncio, sys
from reference_host import Host, HostConfig

async def main():
    host = Host("127.0.0.1:0", HostConfig(metrics_log_interval_s=0))
    await host.start()
    await host.stop(grace=0)

asyncio.run(main())
print(sorted(name for name in sys.modules if name == "nats" or name.startswith("nats.")))
"""


def test_single_process_host_imports_nothing_of_nats() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_cluster_flags_build_a_cluster_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cli, "_has_nkeys", lambda: True)
    args = build_parser().parse_args(
        [
            "--cluster",
            "nats://127.0.0.1:4222, nats://127.0.0.1:4223",
            "--node-id",
            "n1",
            "--cluster-lease-ms",
            "2000",
            "--nats-creds",
            "user.creds",
        ]
    )
    cluster = build_config(args).cluster
    assert cluster is not None
    assert cluster.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    assert (cluster.node_id, cluster.lease_ms, cluster.credentials) == ("n1", 2000, "user.creds")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--node-id", "n1"], "need --cluster"),
        (["--cluster", "nats://127.0.0.1:4222", "--node-id", "bad.id"], "node id"),
        (["--cluster", "nats://127.0.0.1:4222", "--nats-cert", "c.pem"], "given together"),
    ],
)
def test_inconsistent_cluster_flags_are_refused(argv: list[str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        build_config(build_parser().parse_args(argv))


def test_a_credentials_file_without_nkeys_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # nats-py reads a credentials file only through the nkeys package: say so before joining.
    monkeypatch.setattr(_cli, "_has_nkeys", lambda: False)
    argv = ["--cluster", "nats://127.0.0.1:4222", "--nats-creds", "user.creds"]
    with pytest.raises(ValueError, match="--nats-creds needs the nkeys package"):
        build_config(build_parser().parse_args(argv))


async def _joins(cluster: ClusterConfig) -> None:
    """A host with ``cluster`` starts, joins and serves."""
    host = Host("127.0.0.1:0", HostConfig(cluster=cluster, metrics_log_interval_s=0))
    await host.start()
    try:
        assert host.cluster is not None
        assert host.cluster.available
    finally:
        await host.stop(grace=0)


async def _refused(cluster: ClusterConfig) -> str:
    """A host with ``cluster`` fails to start because NATS refuses it; return the error."""
    host = Host("127.0.0.1:0", HostConfig(cluster=cluster, metrics_log_interval_s=0))
    with pytest.raises(OSError, match="cannot connect to NATS") as raised:
        await host.start()
    return str(raised.value)


@pytest.mark.asyncio
async def test_node_joins_over_mutual_tls_and_refuses_an_unverified_server(
    tmp_path: Path,
) -> None:
    pki = make_test_pki(tmp_path)
    server = NatsServer(
        tls=(str(pki / "server.pem"), str(pki / "server.key")), client_ca=str(pki / "ca.pem")
    )
    with server:
        verified = ClusterConfig(
            servers=(server.url,),
            name="tls",
            tls_ca=str(pki / "ca.pem"),
            tls_cert=str(pki / "client.pem"),
            tls_key=str(pki / "client.key"),
        )
        await _joins(verified)
        # Without the client certificate the server refuses the node; the node says so.
        unverified = ClusterConfig(servers=(server.url,), name="tls", tls_ca=str(pki / "ca.pem"))
        await _refused(unverified)


@pytest.mark.asyncio
async def test_node_joins_with_a_user_and_password_in_its_url_and_hides_them_when_refused() -> None:
    with NatsServer(user=("awp", "s3cret")) as server:
        allowed = ClusterConfig(
            servers=(f"nats://awp:s3cret@127.0.0.1:{server.port}",), name="auth"
        )
        await _joins(allowed)
        # A wrong password is refused; the error names the server, not the credentials.
        wrong = ClusterConfig(servers=(f"nats://awp:guess@127.0.0.1:{server.port}",), name="auth")
        error = await _refused(wrong)
        assert f"nats://***@127.0.0.1:{server.port}" in error
        assert "guess" not in error


@pytest.mark.asyncio
async def test_node_joins_with_a_token_in_its_url() -> None:
    with NatsServer(token="t0ken") as server:
        allowed = ClusterConfig(servers=(f"nats://t0ken@127.0.0.1:{server.port}",), name="token")
        await _joins(allowed)
        # Without the token the server refuses the node.
        anonymous = ClusterConfig(servers=(f"nats://127.0.0.1:{server.port}",), name="token")
        await _refused(anonymous)
