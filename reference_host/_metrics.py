"""Host counters, kept in one object: plain attributes the event loop increments without locks.

The host runs on one event loop, so incrementing a counter is one attribute store. Exporters
(``_metrics_export``) read them when scraped; the periodic log line reads ``snapshot()``.
"""

from __future__ import annotations

from typing import Final

from agentworker.v1 import agentworker_pb2

# Counters (they only grow) and their help text, in export order.
COUNTERS: Final[dict[str, str]] = {
    "connections_total": "Data channels opened since start.",
    "events_received": "CloudEvents received from publishers.",
    "events_delivered": (
        "CloudEvent deliveries enqueued to recipient workers, counted once per delivery by the "
        "node the worker is connected to."
    ),
    "events_unroutable": "Matched agent types that no worker serves, per event.",
    "events_dropped_slow_consumer": "Frames (mostly events) not delivered to slow consumers.",
    "events_dropped_cut_off": (
        "CloudEvents from local workers delivered to no worker because this cluster node had "
        "lost the shared state (AWP-CLU-018)."
    ),
    "slow_consumers_disconnected": "Channels closed with RESOURCE_EXHAUSTED (slow consumer).",
    "rpc_requests": "RPC requests received from callers.",
    "rpc_responses": "RPC responses forwarded from targets to callers.",
    "rpc_late_responses": "RPC responses that arrived after the request was forgotten.",
    "frames_invalid": "Frames rejected as malformed (empty case, bad event, bad response).",
    "batches_sent": "Batch frames written to workers.",
    "owed_frames": "Host-generated frames (errors, notices) held behind a full queue.",
    "control_requests": "Control-channel requests received.",
    "control_responses": "Control-channel responses forwarded.",
    "control_dropped": "Control-channel frames dropped (unmatched or undeliverable).",
}
# Gauges kept as counters' peers; the live queue gauges come from the router at scrape time.
GAUGES: Final[dict[str, str]] = {
    "connections_open": "Data channels currently open.",
    "queue_depth_max": "Largest outbound queue depth seen on any connection, in frames.",
}


class Metrics:
    """Counters of one host."""

    __slots__ = (
        "batches_sent",
        "connections_open",
        "connections_total",
        "control_dropped",
        "control_requests",
        "control_responses",
        "events_delivered",
        "events_dropped_cut_off",
        "events_dropped_slow_consumer",
        "events_received",
        "events_unroutable",
        "frames_invalid",
        "frames_undelivered",
        "owed_frames",
        "queue_depth_max",
        "rpc_errors",
        "rpc_late_responses",
        "rpc_requests",
        "rpc_responses",
        "slow_consumers_disconnected",
    )

    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total = 0
        self.events_received = 0
        self.events_delivered = 0
        self.events_unroutable = 0
        self.events_dropped_slow_consumer = 0
        self.events_dropped_cut_off = 0
        self.slow_consumers_disconnected = 0
        self.rpc_requests = 0
        self.rpc_responses = 0
        self.rpc_late_responses = 0
        self.frames_invalid = 0
        self.queue_depth_max = 0
        self.batches_sent = 0
        self.owed_frames = 0
        self.control_requests = 0
        self.control_responses = 0
        self.control_dropped = 0
        # Host-generated RPC error responses, by ErrorCode name.
        self.rpc_errors: dict[str, int] = {}
        # Frames accepted for a connection and never written to it, by kind (AWP-OBS-020).
        self.frames_undelivered: dict[str, int] = {}

    def count_rpc_error(self, code: int, count: int = 1) -> None:
        """Count ``count`` error responses the host generated with ErrorCode ``code``."""
        name = _error_code_name(code)
        self.rpc_errors[name] = self.rpc_errors.get(name, 0) + count

    def count_undelivered(self, kind: str, count: int = 1) -> None:
        """Count ``count`` frames of ``kind`` (event, request, response, notice, batch,
        control) that the host accepted for a connection and could not write."""
        self.frames_undelivered[kind] = self.frames_undelivered.get(kind, 0) + count

    def snapshot(self) -> dict[str, int]:
        """Return every counter as a flat dict; labelled ones appear as ``name.<LABEL>``."""
        values = {name: int(getattr(self, name)) for name in (*GAUGES, *COUNTERS)}
        for code, count in sorted(dict(self.rpc_errors).items()):
            values[f"rpc_errors.{code}"] = count
        for kind, count in sorted(dict(self.frames_undelivered).items()):
            values[f"frames_undelivered.{kind}"] = count
        return values


def _error_code_name(code: int) -> str:
    try:
        return agentworker_pb2.ErrorCode.Name(code)
    except ValueError:
        return f"ERROR_CODE_{code}"
