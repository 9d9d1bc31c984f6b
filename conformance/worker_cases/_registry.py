"""The registry of worker cases."""

from __future__ import annotations

from conformance._cases import Registry
from conformance._worker_context import WorkerContext

__all__ = ["WORKER_CASES", "worker_case"]

WORKER_CASES: Registry[WorkerContext] = Registry()
worker_case = WORKER_CASES.case
