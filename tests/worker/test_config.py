"""Settings from the environment (16.1) and the token safety rule (AWP-SEC-007)."""

from __future__ import annotations

import pathlib

import pytest

from agentworker.v1 import agentworker_pb2
from reference_worker import TlsConfig, Worker
from reference_worker._config import is_loopback_address, settings_from_env


def test_loopback_detection() -> None:
    for address in ("localhost:1", "127.0.0.1:5", "127.9.9.9:5", "[::1]:5"):
        assert is_loopback_address(address), address
    for address in ("example.com:443", "10.0.0.1:5", "[2001:db8::1]:5"):
        assert not is_loopback_address(address), address


@pytest.mark.requirement("AWP-CNF-001")
def test_settings_from_env(tmp_path: pathlib.Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA")
    (tmp_path / "c.pem").write_bytes(b"CERT")
    (tmp_path / "k.pem").write_bytes(b"KEY")
    settings = settings_from_env(
        {
            "AGENTWORKER_HOST_ADDRESS": "h:1",
            "AGENTWORKER_CLIENT_ID": "me",
            "AGENTWORKER_TLS_CA": str(tmp_path / "ca.pem"),
            "AGENTWORKER_TLS_CERT": str(tmp_path / "c.pem"),
            "AGENTWORKER_TLS_KEY": str(tmp_path / "k.pem"),
            "AGENTWORKER_TLS_SERVER_NAME": "host.test",
            "AGENTWORKER_TOKEN": "t",
        }
    )
    assert settings.host_address == "h:1"
    assert settings.client_id == "me"
    assert settings.tls == TlsConfig(b"CA", b"CERT", b"KEY", "host.test")
    assert settings.token == "t"
    with pytest.raises(ValueError, match="AGENTWORKER_HOST_ADDRESS"):
        settings_from_env({})


def test_from_env_without_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWORKER_HOST_ADDRESS", "127.0.0.1:9")
    for name in ("CLIENT_ID", "TLS_CA", "TLS_CERT", "TLS_KEY", "TOKEN"):
        monkeypatch.delenv(f"AGENTWORKER_{name}", raising=False)
    worker = Worker.from_env()
    assert worker.host_address == "127.0.0.1:9"
    assert worker.client_id  # a fresh UUID


@pytest.mark.requirement("AWP-SEC-007")
def test_token_is_refused_in_clear_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="token"):
        Worker("example.com:50051", token="secret")
    Worker("localhost:50051", token="secret")
    Worker("example.com:50051", token="secret", tls=TlsConfig(ca=b"x"))


@pytest.mark.requirement("AWP-VER-016")
def test_capabilities_follow_the_configuration() -> None:
    plain = set(Worker("localhost:1").capabilities)
    assert plain == {
        agentworker_pb2.CAPABILITY_BATCHING,
        agentworker_pb2.CAPABILITY_STATE,
        agentworker_pb2.CAPABILITY_RECONNECT,
        agentworker_pb2.CAPABILITY_TRACE_CONTEXT,
    }
    secured = set(Worker("localhost:1", token="t", tls=TlsConfig(b"ca", b"c", b"k")).capabilities)
    assert {
        agentworker_pb2.CAPABILITY_TLS,
        agentworker_pb2.CAPABILITY_MUTUAL_TLS,
        agentworker_pb2.CAPABILITY_BEARER_TOKEN,
    } <= secured
    assert (
        agentworker_pb2.CAPABILITY_RECONNECT
        not in Worker("localhost:1", reconnect=False).capabilities
    )


def test_mutual_tls_needs_cert_and_key() -> None:
    with pytest.raises(ValueError, match="both"):
        TlsConfig(ca=b"x", cert=b"c")
