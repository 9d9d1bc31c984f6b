"""The wire trace of one case: every frame and call sent and received, in order."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["COLLECTED", "Trace", "TraceEntry"]

COLLECTED = "~~"


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One line of a trace: milliseconds since the case began, a peer label, a direction
    (``->`` sent by the harness, ``<-`` received, ``..`` a note, ``~~`` a line a subject wrote
    to its log during the case, collected when the case ended: its time is unknown) and a
    description."""

    at_ms: float
    peer: str
    direction: str
    text: str

    def render(self) -> str:
        """Return the entry as one line."""
        if self.direction == COLLECTED:
            return f"{'(later)':>12}  {self.peer:<12} {self.direction} {self.text}"
        return f"{self.at_ms:9.1f} ms  {self.peer:<12} {self.direction} {self.text}"


@dataclass(slots=True)
class Trace:
    """Collects trace entries for one case."""

    started: float = field(default_factory=time.monotonic)
    entries: list[TraceEntry] = field(default_factory=list)

    def add(self, peer: str, direction: str, text: str) -> None:
        """Record one entry timed from the start of the case."""
        at_ms = (time.monotonic() - self.started) * 1000.0
        self.entries.append(TraceEntry(at_ms, peer, direction, text))

    def sent(self, peer: str, text: str) -> None:
        """Record something the harness sent as ``peer``."""
        self.add(peer, "->", text)

    def received(self, peer: str, text: str) -> None:
        """Record something ``peer`` received from the subject."""
        self.add(peer, "<-", text)

    def note(self, peer: str, text: str) -> None:
        """Record a remark (a connection opened or closed, a status observed)."""
        self.add(peer, "..", text)

    def collected(self, peer: str, text: str) -> None:
        """Record a line ``peer`` wrote to its log during the case, read when the case ended;
        it is rendered as collected later, not at the time it was read."""
        self.add(peer, COLLECTED, text)

    def lines(self) -> list[str]:
        """Return the trace rendered line by line."""
        return [e.render() for e in self.entries]
