"""The registry of host cases."""

from __future__ import annotations

from conformance._cases import Registry
from conformance._host_context import HostContext

__all__ = ["HOST_CASES", "host_case"]

HOST_CASES: Registry[HostContext] = Registry()
host_case = HOST_CASES.case
