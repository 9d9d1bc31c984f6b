"""Steps decide requirements one by one: a failed step does not hide an independent one, a
failed gate leaves the steps after it not reached, and a case with no step is decided by its
status. Fake cases and a fake subject (no network)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from conformance import CaseFailure, Registry, Status
from conformance._runner import RunOptions, run_cases
from conformance._steps import StepRecorder, StepsMixin, Verdict
from conformance._trace import Trace
from tests.conformance.test_runner import FakeSubject


@dataclass
class StepContext(StepsMixin):
    trace: Trace = field(default_factory=Trace)
    steps: StepRecorder = field(default_factory=StepRecorder)

    def verify(self) -> None:
        pass

    async def close(self) -> None:
        pass


REGISTRY: Registry[StepContext] = Registry()


@REGISTRY.case("steps/independent", requirements=["AWP-A", "AWP-B", "AWP-C"])
async def _independent(ctx: StepContext) -> None:
    """The first step fails; the others still run."""
    with ctx.step("AWP-A", "first"):
        raise CaseFailure("wrong code")
    async with ctx.step("AWP-B", "second"):
        await asyncio.sleep(0)
    ctx.decide("AWP-C", "third", True, "unused")


@REGISTRY.case("steps/gate", requirements=["AWP-A", "AWP-B", "AWP-C"])
async def _gate(ctx: StepContext) -> None:
    """A gate fails: the steps after it depend on it."""
    ctx.decide("AWP-A", "setup", True, "unused")
    with ctx.step("AWP-B", "needed by the rest", gate=True):
        raise CaseFailure("no answer")
    ctx.decide("AWP-C", "never", True, "unused")  # pragma: no cover - not reached


@REGISTRY.case("steps/error-outside", requirements=["AWP-A", "AWP-B"])
async def _error_outside(ctx: StepContext) -> None:
    """An error outside any step ends the case."""
    ctx.decide("AWP-A", "first", True, "unused")
    raise CaseFailure("the setup broke")


@REGISTRY.case("steps/none", requirements=["AWP-A", "AWP-B"])
async def _none(ctx: StepContext) -> None:
    """No steps: the case's status stands in."""
    raise CaseFailure("old style")


@REGISTRY.case("steps/hang", requirements=["AWP-A"])
async def _hang(ctx: StepContext) -> None:
    """The step never ends: the case's time runs out inside it."""
    with ctx.step("AWP-A", "waits forever"):
        await asyncio.Event().wait()


@REGISTRY.case("steps/checks", requirements=["AWP-TST-001", "AWP-TST-002", "AWP-TST-003"])
async def _checks(ctx: StepContext) -> None:
    """Checks whose messages name requirements become gate steps, one per place."""
    for n in range(3):
        ctx.check(n < 3, "looped (AWP-TST-001)")
    ctx.check(False, "broken (AWP-TST-002)")
    ctx.check(True, "never reached (AWP-TST-003)")  # pragma: no cover - not reached


@pytest.mark.asyncio
async def test_steps_decide_requirements_one_by_one() -> None:
    result = await run_cases(
        "host",
        REGISTRY.all(),
        FakeSubject(),
        known_case_ids=REGISTRY.ids(),
        make_context=StepContext,
        applicability=lambda case: None,
        options=RunOptions(case_timeout_s=0.5),
    )
    by_id = {r.case_id: r for r in result.results}

    def verdicts(case: str) -> list[tuple[str, str, str | None, bool]]:
        return [(o.requirement, o.verdict.value, o.step, o.by_case) for o in by_id[case].outcomes]

    assert by_id["steps/independent"].status is Status.FAIL
    assert verdicts("steps/independent") == [
        ("AWP-A", "fail", "first", False),
        ("AWP-B", "pass", "second", False),
        ("AWP-C", "pass", "third", False),
    ]
    assert "[AWP-A] first: wrong code" in by_id["steps/independent"].message
    assert verdicts("steps/gate") == [
        ("AWP-A", "pass", "setup", False),
        ("AWP-B", "fail", "needed by the rest", False),
        ("AWP-C", "not_reached", None, False),
    ]
    assert by_id["steps/error-outside"].status is Status.FAIL
    assert verdicts("steps/error-outside") == [
        ("AWP-A", "pass", "first", False),
        ("AWP-B", "not_reached", None, False),
    ]
    assert verdicts("steps/none") == [
        ("AWP-A", "fail", None, True),
        ("AWP-B", "fail", None, True),
    ]
    checks = by_id["steps/checks"]
    assert [(o.requirement, o.verdict.value) for o in checks.outcomes] == [
        ("AWP-TST-001", "pass"),
        ("AWP-TST-002", "fail"),
        ("AWP-TST-003", "not_reached"),
    ]
    assert len(checks.steps) == 2  # the loop's passing check is recorded once
    assert checks.outcomes[1].step is not None
    assert checks.outcomes[1].step == "check 2 in _checks()"
    assert by_id["steps/hang"].status is Status.FAIL
    assert verdicts("steps/hang") == [("AWP-A", "fail", "waits forever", False)]


def test_combined_verdicts_follow_precedence() -> None:
    combine = Verdict.combine
    assert combine([Verdict.PASS, Verdict.FAIL]) is Verdict.FAIL
    assert combine([Verdict.NOT_REACHED, Verdict.PASS]) is Verdict.PASS
    assert combine([Verdict.NOT_APPLICABLE, Verdict.NOT_REACHED]) is Verdict.NOT_REACHED
    assert combine([]) is Verdict.NOT_APPLICABLE
