"""The spec's machine-readable requirement index (spec/requirements.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Requirement", "SpecIndex", "load_spec_index"]

_CANDIDATES = (
    Path(__file__).resolve().parent / "requirements.json",
    Path(__file__).resolve().parents[1] / "spec" / "requirements.json",
)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement of the spec."""

    id: str
    subject: str
    level: str
    section: str
    text: str


@dataclass(frozen=True, slots=True)
class SpecIndex:
    """The spec version and its requirements in document order."""

    version: str
    requirements: tuple[Requirement, ...]

    def for_subject(self, subject: str) -> list[Requirement]:
        """Return the requirements binding ``subject`` ("host" or "worker"), peers included."""
        return [r for r in self.requirements if r.subject in (subject, "peer")]

    def get(self, requirement_id: str) -> Requirement | None:
        """Return the requirement with this id, if any."""
        for r in self.requirements:
            if r.id == requirement_id:
                return r
        return None


def load_spec_index(path: Path | None = None) -> SpecIndex:
    """Load the index from ``path``, else from packaged data, else from the repository's
    spec/ directory; an index that cannot be found yields version "unknown"."""
    candidates = (path,) if path is not None else _CANDIDATES
    for candidate in candidates:
        if candidate.is_file():
            data = json.loads(candidate.read_text(encoding="utf-8"))
            reqs = tuple(
                Requirement(
                    id=str(r["id"]),
                    subject=str(r["subject"]),
                    level=str(r["level"]),
                    section=str(r["section"]),
                    text=str(r["text"]),
                )
                for r in data["requirements"]
            )
            return SpecIndex(version=str(data["version"]), requirements=reqs)
    return SpecIndex(version="unknown", requirements=())
