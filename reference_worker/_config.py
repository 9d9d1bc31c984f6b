"""Worker settings: TLS material, tokens and the AGENTWORKER_* environment (spec 16.1)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsConfig", "is_loopback_address", "settings_from_env"]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings. `ca`, `cert` and `key` are PEM bytes; cert and key enable mutual TLS."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("mutual TLS needs both a client certificate and its key")

    @property
    def mutual(self) -> bool:
        return self.cert is not None

    @classmethod
    def from_files(
        cls,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
    ) -> TlsConfig:
        def read(path: str | os.PathLike[str] | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return cls(read(ca), read(cert), read(key), server_name or None)


def split_host(address: str) -> str:
    """The host part of `HOST:PORT` (IPv6 in brackets allowed)."""
    address = address.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if ":" in address else address


def is_loopback_address(address: str) -> bool:
    """Whether `HOST:PORT` names this machine (localhost or a loopback IP)."""
    host = split_host(address)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class EnvSettings:
    """Settings read from AGENTWORKER_* variables."""

    host_address: str
    client_id: str | None
    tls: TlsConfig | None
    token: str | None

    @property
    def host_addresses(self) -> list[str]:
        """The addresses of AGENTWORKER_HOST_ADDRESS, which may list several separated by
        commas (nodes of one cluster, tried in order)."""
        return [part.strip() for part in self.host_address.split(",") if part.strip()]


def settings_from_env(environ: Mapping[str, str] | None = None) -> EnvSettings:
    """Reads AWP-CNF-001's variables; AGENTWORKER_HOST_ADDRESS is required."""
    env = os.environ if environ is None else environ
    address = env.get("AGENTWORKER_HOST_ADDRESS", "").strip()
    if not address:
        raise ValueError("AGENTWORKER_HOST_ADDRESS is not set")
    tls: TlsConfig | None = None
    ca = env.get("AGENTWORKER_TLS_CA") or None
    cert = env.get("AGENTWORKER_TLS_CERT") or None
    key = env.get("AGENTWORKER_TLS_KEY") or None
    server_name = env.get("AGENTWORKER_TLS_SERVER_NAME") or None
    if ca or cert or key:
        tls = TlsConfig.from_files(ca, cert, key, server_name)
    return EnvSettings(
        host_address=address,
        client_id=env.get("AGENTWORKER_CLIENT_ID") or None,
        tls=tls,
        token=env.get("AGENTWORKER_TOKEN") or None,
    )
