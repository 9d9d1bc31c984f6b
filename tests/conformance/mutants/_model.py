"""What a mutant is: a named patch applied to the reference host or worker in its own
process, the one requirement it breaks, and the cases that must catch it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Mutant", "Side"]

Side = str  # "host" or "worker": the suite whose subject the mutant is


@dataclass(frozen=True, slots=True)
class Mutant:
    """One deliberately broken subject.

    ``patch`` runs in the subject process before the reference host or worker starts; it
    replaces one behaviour by a wrong one (test-side only). ``catches`` are the cases expected
    to fail on it; each must cite ``requirement``. ``legacy`` also runs it against the host
    suite's legacy mode (the subject then answers with AutoGen's status codes), where v1-only
    cases do not apply. ``host_args`` are extra reference host options (host mutants) that
    keep slow cases short."""

    name: str
    side: Side
    requirement: str
    summary: str
    patch: Callable[[], None]
    catches: tuple[str, ...]
    host_args: tuple[str, ...] = field(default=())
    claims: tuple[str, ...] = field(default=())  # worker capabilities to claim (TLS, ...)
    # Requirements the mutant leaves intact, whose steps in the same cases must not fail
    # (checked on reports that give per-requirement step verdicts).
    spares: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """Return the mutant's unique key, ``side:name``."""
        return f"{self.side}:{self.name}"
