"""The registry mutants add themselves to with the ``mutant`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tests.conformance.mutants._model import Mutant, Side

__all__ = ["MUTANTS", "mutant"]

MUTANTS: list[Mutant] = []


def mutant(
    side: Side,
    name: str,
    requirement: str,
    summary: str,
    *,
    catches: Iterable[str],
    host_args: Iterable[str] = (),
    claims: Iterable[str] = (),
    spares: Iterable[str] = (),
) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register the decorated patch function as a mutant."""

    def decorate(patch: Callable[[], None]) -> Callable[[], None]:
        MUTANTS.append(
            Mutant(
                name=name,
                side=side,
                requirement=requirement,
                summary=summary,
                patch=patch,
                catches=tuple(catches),
                host_args=tuple(host_args),
                claims=tuple(claims),
                spares=tuple(spares),
            )
        )
        return patch

    return decorate
