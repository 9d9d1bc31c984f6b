"""W3C trace context: the current context and its propagation (AWP-OBS-004)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["TraceContext", "current_trace", "trace_from_carrier", "trace_scope"]

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A W3C trace context: `traceparent` and, when present, `tracestate`."""

    traceparent: str
    tracestate: str = ""

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]

    def child(self) -> TraceContext:
        """Returns the context of work whose parent is this one: same trace, new span id."""
        version, trace_id, _, flags = self.traceparent.split("-")
        span_id = secrets.token_hex(8)
        return TraceContext(f"{version}-{trace_id}-{span_id}-{flags}", self.tracestate)

    def items(self) -> dict[str, str]:
        carrier = {"traceparent": self.traceparent}
        if self.tracestate:
            carrier["tracestate"] = self.tracestate
        return carrier


_current: ContextVar[TraceContext | None] = ContextVar("agentworker_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the handler running in this task, if any."""
    return _current.get()


def set_current_trace(context: TraceContext | None) -> None:
    _current.set(context)


def trace_from_carrier(traceparent: str, tracestate: str = "") -> TraceContext | None:
    """Parses a received traceparent; an invalid one is ignored (None)."""
    value = traceparent.strip().lower()
    match = _TRACEPARENT.match(value)
    if match is None or match.group(1) == "ff":
        return None
    if set(match.group(2)) == {"0"} or set(match.group(3)) == {"0"}:
        return None
    return TraceContext(value, tracestate.strip())


@contextmanager
def trace_scope(context: TraceContext | None) -> Iterator[TraceContext | None]:
    """Makes `context` the current trace for the code in the `with` block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
