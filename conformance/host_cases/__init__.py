"""The host suite: every case a host must pass. Importing this package registers them."""

from __future__ import annotations

from conformance.host_cases import (
    _batching,
    _cluster,
    _compat,
    _connection,
    _control,
    _deadlines,
    _flow,
    _handshake,
    _lifecycle,
    _observability,
    _publish,
    _registration,
    _rpc,
    _security,
    _sharing,
    _subscriptions,
)
from conformance.host_cases._registry import HOST_CASES, host_case

__all__ = ["HOST_CASES", "host_case"]

_MODULES = (
    _connection,
    _handshake,
    _registration,
    _subscriptions,
    _publish,
    _rpc,
    _deadlines,
    _batching,
    _control,
    _sharing,
    _compat,
    _lifecycle,
    _flow,
    _observability,
    _security,
    _cluster,
)
