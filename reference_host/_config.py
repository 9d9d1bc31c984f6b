"""Host configuration: limits, timeouts, TLS material and bearer-token policies."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ADDRESS: Final = "localhost:50051"
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
MAX_BATCH_MESSAGES: Final = 1024
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_\-]{1,32}")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """One accepted bearer token and what it allows.

    ``client_id`` is the only client-id the token may be used with. ``agent_types``, when not
    None, lists the agent types the client may register; None allows any type.
    """

    token: str
    client_id: str
    agent_types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """PEM-encoded TLS material. With ``client_ca`` set, clients must present a certificate
    signed by it (mutual TLS)."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(
        cls, cert: str | Path, key: str | Path, client_ca: str | Path | None = None
    ) -> TlsConfig:
        """Read the certificate chain, private key and optional client CA from PEM files."""
        return cls(
            certificate_chain=Path(cert).read_bytes(),
            private_key=Path(key).read_bytes(),
            client_ca=Path(client_ca).read_bytes() if client_ca is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """How a host node joins a cluster over NATS (section 18 of the spec).

    ``servers`` are NATS URLs (``nats://HOST:PORT`` or ``tls://HOST:PORT``). Nodes of one
    cluster share ``name``, which names the JetStream key-value bucket and the subject prefix,
    so several clusters can share one NATS deployment.
    """

    servers: tuple[str, ...]
    # This node's name, unique in the cluster while it runs; empty: a random one.
    node_id: str = ""
    name: str = "agentworker"
    # A node that renews no lease for this long is lost (AWP-CLU-008).
    lease_ms: int = 3_000
    # PEM CA bundle that verifies the NATS server, and an optional client certificate and key.
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # NATS credentials file (JWT and NKey seed), or a user/password or token in the URL.
    credentials: str | None = None

    def shown_servers(self) -> str:
        """Return the server URLs for logs and errors, without the user, password or token a
        URL may carry."""
        shown = []
        for url in self.servers:
            parts = urlsplit(url)
            if "@" in parts.netloc:
                url = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
            shown.append(url)
        return ", ".join(shown)

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("a cluster needs at least one NATS server URL")
        if self.lease_ms < 100:
            raise ValueError(f"lease_ms must be at least 100, got {self.lease_ms}")
        if _NAME_RE.fullmatch(self.name) is None:
            raise ValueError(f"cluster name {self.name!r} must be 1-32 characters of [A-Za-z0-9_-]")
        if self.node_id and _NAME_RE.fullmatch(self.node_id) is None:
            raise ValueError(f"node id {self.node_id!r} must be 1-32 characters of [A-Za-z0-9_-]")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("the NATS client certificate and key must be given together")


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Settings of a Host. Every duration is in milliseconds unless its name says otherwise."""

    # Deadline applied to RPC requests that carry no timeout_ms.
    default_rpc_timeout_ms: int = 60_000
    # Largest timeout_ms honoured; larger ones are treated as this (AWP-RPC-024). 0: no cap.
    max_rpc_timeout_ms: int = 3_600_000
    # Outbound frames a connection may have queued before senders wait (backpressure).
    queue_limit: int = 10_000
    # RPCs (and control requests) a connection may have in flight before the host answers
    # further ones with OVERLOADED; announced in the welcome (AWP-FLOW-005).
    max_calls_in_flight: int = 10_000
    # How long a sender waits for space in a full queue before the consumer is disconnected.
    slow_consumer_timeout_ms: int = 10_000
    # How long RegisterAgent and AddSubscription wait for the caller's data channel to open.
    channel_wait_ms: int = 5_000
    # Largest frame the host sends or accepts, in bytes.
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Largest number of frames the host accepts in one Batch frame.
    max_batch_messages: int = MAX_BATCH_MESSAGES
    # Lets several workers that negotiated CAPABILITY_SHARED_AGENT_TYPES serve one agent type.
    shared_agent_types: bool = True
    # Serves TLS (and mutual TLS when the config has a client CA) instead of plaintext.
    tls: TlsConfig | None = None
    # Requires `authorization: Bearer <token>` on every call when non-empty.
    tokens: tuple[TokenPolicy, ...] = field(default=())
    # Serves Prometheus text metrics over HTTP at HOST:PORT when set.
    metrics_address: str | None = None
    # Logs the metrics every this many seconds (0 disables the periodic line).
    metrics_log_interval_s: float = 60.0
    # Time given to in-flight RPCs when draining on a signal (CLI), in seconds.
    drain_grace_s: float = 10.0
    # Joins a cluster of host nodes over NATS when set; None: a single-process host.
    cluster: ClusterConfig | None = None

    def __post_init__(self) -> None:
        positive = {
            "default_rpc_timeout_ms": self.default_rpc_timeout_ms,
            "queue_limit": self.queue_limit,
            "max_calls_in_flight": self.max_calls_in_flight,
            "slow_consumer_timeout_ms": self.slow_consumer_timeout_ms,
            "max_message_bytes": self.max_message_bytes,
            "max_batch_messages": self.max_batch_messages,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0, got {value}")
        if self.max_rpc_timeout_ms < 0:
            raise ValueError(
                f"max_rpc_timeout_ms must not be negative, got {self.max_rpc_timeout_ms}"
            )
        if 0 < self.max_rpc_timeout_ms < self.default_rpc_timeout_ms:
            raise ValueError("default_rpc_timeout_ms must not exceed max_rpc_timeout_ms")
        if self.channel_wait_ms < 0:
            raise ValueError(f"channel_wait_ms must not be negative, got {self.channel_wait_ms}")
        tokens = [policy.token for policy in self.tokens]
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be unique")


def load_tokens(path: str | Path) -> tuple[TokenPolicy, ...]:
    """Read token policies from a JSON file.

    The file holds a list of objects ``{"token": str, "client_id": str, "agent_types": [str]}``,
    ``agent_types`` being optional.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of token objects")
    policies: list[TokenPolicy] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: entry {index} is not an object")
        token = item.get("token")
        client_id = item.get("client_id")
        if not isinstance(token, str) or not token:
            raise ValueError(f"{path}: entry {index} needs a non-empty string 'token'")
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"{path}: entry {index} needs a non-empty string 'client_id'")
        types = item.get("agent_types")
        agent_types: frozenset[str] | None = None
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ValueError(f"{path}: entry {index} 'agent_types' must be a list of strings")
            agent_types = frozenset(types)
        policies.append(TokenPolicy(token=token, client_id=client_id, agent_types=agent_types))
    return tuple(policies)
