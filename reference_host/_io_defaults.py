"""gRPC core settings the host process prefers, applied before gRPC loads.

grpcio 1.85 runs Python's socket I/O on EventEngine threads by default. For a relay such as
this host, whose every frame is one read and one write, that costs 11 to 29% more CPU per
message than polling on the Python thread (bench/results/findings.md). gRPC reads
``GRPC_EXPERIMENTS`` once, when its core loads, so this module must not import grpc and its
function must run before anything else does.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Final

__all__ = ["EXPERIMENTS_VARIABLE", "POLL_IO_EXPERIMENTS", "prefer_poll_io"]

EXPERIMENTS_VARIABLE: Final = "GRPC_EXPERIMENTS"
POLL_IO_EXPERIMENTS: Final = "-event_engine_client,-event_engine_listener"


def prefer_poll_io(environ: MutableMapping[str, str] | None = None) -> bool:
    """Turn EventEngine I/O off unless the operator set ``GRPC_EXPERIMENTS`` (even to an empty
    value, which keeps gRPC's defaults); return whether the setting was applied."""
    env = os.environ if environ is None else environ
    if EXPERIMENTS_VARIABLE in env:
        return False
    env[EXPERIMENTS_VARIABLE] = POLL_IO_EXPERIMENTS
    return True
