"""Conformance cases and the registry that holds them, for every suite (host, worker)."""

from __future__ import annotations

import enum
import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "Case",
    "CaseFailure",
    "CaseSkip",
    "Level",
    "Registry",
    "SkipReason",
]

ContextT = TypeVar("ContextT")


class Level(enum.Enum):
    """How binding a case is: ``core`` checks a MUST every subject has to meet, ``capability``
    a MUST of an optional feature the subject announces, ``quality`` a SHOULD."""

    CORE = "core"
    CAPABILITY = "capability"
    QUALITY = "quality"


class SkipReason(enum.Enum):
    """Why a case was not run."""

    NOT_CLAIMED = "not claimed"
    NOT_APPLICABLE = "not applicable"


class CaseFailure(AssertionError):
    """Raised by a case body when the subject violates what the case asserts."""


class CaseSkip(Exception):
    """Raised by a case body (or its context) when the case does not apply to the subject."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Case(Generic[ContextT]):
    """One conformance case: a hierarchical id such as
    ``host/rpc/correlation/colliding-request-ids``, the requirement IDs it checks, its level,
    its description (Procedure / Asserts) and its async body.

    ``v1_only`` marks cases that need v1 extensions (skipped as "not applicable" against a
    legacy subject); ``capability`` names the capability value the subject must announce."""

    id: str
    requirements: tuple[str, ...]
    level: Level
    description: str
    body: Callable[[ContextT], Awaitable[None]]
    v1_only: bool = False
    capability: int | None = None

    @property
    def suite(self) -> str:
        """Return the suite the case belongs to (the first part of its id)."""
        return self.id.split("/", 1)[0]


class Registry(Generic[ContextT]):
    """An ordered collection of cases with unique ids."""

    def __init__(self) -> None:
        self._cases: dict[str, Case[ContextT]] = {}

    def add(self, case: Case[ContextT]) -> None:
        """Add a case; its id must be new."""
        if case.id in self._cases:
            raise ValueError(f"duplicate case id {case.id}")
        self._cases[case.id] = case

    def case(
        self,
        case_id: str,
        *,
        requirements: Iterable[str],
        level: Level = Level.CORE,
        v1_only: bool = False,
        capability: int | None = None,
    ) -> Callable[[Callable[[ContextT], Awaitable[None]]], Callable[[ContextT], Awaitable[None]]]:
        """Register the decorated async function as a case; its docstring is the description."""

        def decorate(
            body: Callable[[ContextT], Awaitable[None]],
        ) -> Callable[[ContextT], Awaitable[None]]:
            doc = inspect.cleandoc(body.__doc__ or "")
            self.add(
                Case(
                    id=case_id,
                    requirements=tuple(requirements),
                    level=level,
                    description=doc,
                    body=body,
                    v1_only=v1_only,
                    capability=capability,
                )
            )
            return body

        return decorate

    def get(self, case_id: str) -> Case[ContextT] | None:
        """Return the case with this id, if any."""
        return self._cases.get(case_id)

    def all(self) -> list[Case[ContextT]]:
        """Return every case, ordered by id (so related cases run together)."""
        return sorted(self._cases.values(), key=lambda c: c.id)

    def ids(self) -> set[str]:
        """Return the set of case ids."""
        return set(self._cases)

    def select(
        self,
        *,
        globs: Iterable[str] = (),
        requirements: Iterable[str] = (),
        levels: Iterable[Level] = (),
    ) -> list[Case[ContextT]]:
        """Return the cases matching any glob (all when none), citing any of the requirements
        (all when none) and of any of the levels (all when none), ordered by id."""
        globs = list(globs)
        wanted_reqs = set(requirements)
        wanted_levels = set(levels)
        chosen = []
        for case in self.all():
            if globs and not any(fnmatch.fnmatchcase(case.id, g) for g in globs):
                continue
            if wanted_reqs and not wanted_reqs.intersection(case.requirements):
                continue
            if wanted_levels and case.level not in wanted_levels:
                continue
            chosen.append(case)
        return chosen
