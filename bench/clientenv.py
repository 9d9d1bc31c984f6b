"""gRPC settings of the bench process itself (the load clients), applied before gRPC starts.

The load clients should cost as little CPU as possible, so that the hosts, not the clients,
use up the machine. grpcio 1.85 does its I/O on EventEngine threads, which costs the clients
15-30% more CPU per frame on a 2-core machine than doing it on the Python thread; the bench
process therefore turns those experiments off for itself unless the caller set
``GRPC_EXPERIMENTS`` or passed ``--client-grpc-defaults``. Hosts get the environment the bench
was started with, never this setting (a subject may set its own, see subjects.py).

This module must not import grpc: it runs before gRPC reads its configuration.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from typing import Final

VARIABLE: Final = "GRPC_EXPERIMENTS"
CLIENT_EXPERIMENTS: Final = "-event_engine_client,-event_engine_listener"
OPT_OUT: Final = "--client-grpc-defaults"

_original: str | None = os.environ.get(VARIABLE)
_applied = False


def apply(argv: Sequence[str]) -> None:
    """Set the clients' gRPC experiments for this process (call before importing grpc)."""
    global _applied
    if OPT_OUT in argv or VARIABLE in os.environ:
        return
    os.environ[VARIABLE] = CLIENT_EXPERIMENTS
    _applied = True


def client_setting() -> str:
    """Describe the gRPC experiments the load clients run with."""
    value = os.environ.get(VARIABLE)
    if value is None:
        return "gRPC defaults"
    return f"{VARIABLE}={value}" + (" (bench default)" if _applied else " (from the environment)")


def restore_for_host(env: MutableMapping[str, str]) -> None:
    """Give a host process the value the bench was started with."""
    if not _applied:
        return
    if _original is None:
        env.pop(VARIABLE, None)
    else:
        env[VARIABLE] = _original
