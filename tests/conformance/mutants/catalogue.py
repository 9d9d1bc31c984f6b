"""Every mutant, host and worker, in one list."""

from __future__ import annotations

from tests.conformance.mutants import host, worker
from tests.conformance.mutants._model import Mutant
from tests.conformance.mutants._registry import MUTANTS

__all__ = ["all_mutants", "mutant_named"]

del host, worker  # imported for their registrations


def all_mutants() -> list[Mutant]:
    """Return every mutant, host side first, each side in definition order."""
    return sorted(MUTANTS, key=lambda m: m.side != "host")


def mutant_named(side: str, name: str) -> Mutant:
    """Return the mutant ``name`` of ``side``; raise KeyError if there is none."""
    for candidate in MUTANTS:
        if candidate.side == side and candidate.name == name:
            return candidate
    raise KeyError(f"no {side} mutant {name!r}")
