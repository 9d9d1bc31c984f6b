"""The v1 handshake: ChannelHello in request metadata, ChannelWelcome in response metadata."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, cast

from google.protobuf.message import DecodeError

from agentworker.v1 import agentworker_pb2 as pb

from ._config import HostConfig
from ._errors import FailedPrecondition, InvalidArgument
from ._version import __version__

HELLO_METADATA_KEY: Final = "agentworker-hello-bin"
WELCOME_METADATA_KEY: Final = "agentworker-welcome-bin"
CONTROL_TIMEOUT_METADATA_KEY: Final = "agentworker-control-timeout-ms"
# A control timeout is 1 to 18 decimal digits, nothing else (AWP-CTL-010).
_CONTROL_TIMEOUT: Final = re.compile(r"[0-9]{1,18}")
PROTOCOL_VERSION: Final = 1
IMPLEMENTATION: Final = f"reference_host/{__version__} (python)"
DEFAULT_WORKER_MAX_BATCH: Final = 1024
# What every peer accepts (AWP-CONN-003), and what a hello without max_message_bytes means.
MIN_MESSAGE_BYTES: Final = 4 * 1024 * 1024


def host_capabilities(config: HostConfig) -> frozenset[int]:
    """Return the capabilities this host offers under ``config``."""
    caps = {pb.CAPABILITY_BATCHING, pb.CAPABILITY_STATE, pb.CAPABILITY_TRACE_CONTEXT}
    if config.shared_agent_types:
        caps.add(pb.CAPABILITY_SHARED_AGENT_TYPES)
    if config.tls is not None:
        caps.add(pb.CAPABILITY_TLS)
        if config.tls.client_ca is not None:
            caps.add(pb.CAPABILITY_MUTUAL_TLS)
    if config.tokens:
        caps.add(pb.CAPABILITY_BEARER_TOKEN)
    return frozenset(caps)


def parse_hello(raw: bytes | str | None) -> pb.ChannelHello | None:
    """Decode the hello metadata value; None means a legacy worker (AWP-VER-011).

    Raises InvalidArgument when the value does not decode and FailedPrecondition when the worker
    speaks another protocol major version (AWP-VER-010).
    """
    if raw is None:
        return None
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    hello = pb.ChannelHello()
    try:
        hello.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidArgument(f"{HELLO_METADATA_KEY} is not a valid ChannelHello: {exc}") from exc
    if hello.protocol_version != PROTOCOL_VERSION:
        raise FailedPrecondition(
            f"unsupported protocol_version {hello.protocol_version}; this host speaks "
            f"{PROTOCOL_VERSION}"
        )
    return hello


def parse_control_timeout(raw: bytes | str | None) -> int | None:
    """Decode the control timeout of a control channel, in milliseconds; None when absent.

    Raises InvalidArgument for a value that is not a positive decimal integer of at most 18
    digits (AWP-CTL-012).
    """
    if raw is None:
        return None
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if _CONTROL_TIMEOUT.fullmatch(text) is None or int(text) == 0:
        raise InvalidArgument(
            f"{CONTROL_TIMEOUT_METADATA_KEY} {text!r} is not a positive number of milliseconds"
        )
    return int(text)


def negotiate(worker_caps: Iterable[int], offered: frozenset[int]) -> frozenset[int]:
    """Return the capabilities both sides advertised (AWP-VER-012)."""
    return frozenset(cap for cap in worker_caps if cap in offered)


def worker_max_batch(hello: pb.ChannelHello) -> int:
    """Return how many frames the worker accepts per Batch frame."""
    return hello.max_batch_messages or DEFAULT_WORKER_MAX_BATCH


def worker_max_message_bytes(hello: pb.ChannelHello) -> int:
    """Return the largest frame the worker accepts (AWP-CONN-029: 0 means 4 MiB)."""
    return max(hello.max_message_bytes, MIN_MESSAGE_BYTES)


def security_mechanisms(config: HostConfig) -> list[pb.SecurityMechanism]:
    """Return the mechanisms protecting every connection under ``config`` (AWP-VER-017)."""
    mechanisms = []
    if config.tls is not None:
        mechanisms.append(pb.SECURITY_MECHANISM_TLS)
        if config.tls.client_ca is not None:
            mechanisms.append(pb.SECURITY_MECHANISM_MUTUAL_TLS)
    if config.tokens:
        mechanisms.append(pb.SECURITY_MECHANISM_BEARER_TOKEN)
    return mechanisms


def welcome(config: HostConfig, capabilities: frozenset[int], connection_id: str) -> bytes:
    """Encode the ChannelWelcome sent in the initial metadata (AWP-VER-013)."""
    message = pb.ChannelWelcome(
        protocol_version=PROTOCOL_VERSION,
        capabilities=sorted(cast("frozenset[pb.Capability]", capabilities)),
        implementation=IMPLEMENTATION,
        default_rpc_timeout_ms=config.default_rpc_timeout_ms,
        max_batch_messages=config.max_batch_messages,
        max_message_bytes=config.max_message_bytes,
        connection_id=connection_id,
        security_mechanisms=security_mechanisms(config),
        channel_wait_ms=config.channel_wait_ms,
        max_rpc_timeout_ms=config.max_rpc_timeout_ms,
        max_calls_in_flight=config.max_calls_in_flight,
    )
    return message.SerializeToString()
