"""The worker suite: every case a worker must pass. Importing this package registers them."""

from __future__ import annotations

from conformance.worker_cases import (
    _batching,
    _call,
    _events,
    _flow,
    _handshake,
    _lifecycle,
    _publish,
    _robustness,
    _rpc,
    _security,
    _state,
    _trace,
)
from conformance.worker_cases._registry import WORKER_CASES, worker_case

__all__ = ["WORKER_CASES", "worker_case"]

_MODULES = (
    _handshake,
    _rpc,
    _events,
    _publish,
    _call,
    _flow,
    _robustness,
    _lifecycle,
    _state,
    _batching,
    _security,
    _trace,
)
