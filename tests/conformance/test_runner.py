"""The runner's verdicts, the summary line, NO RESULT and expected failures, with a fake
subject and fake cases (no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from conformance import (
    Case,
    CaseFailure,
    CaseSkip,
    ExpectedFailure,
    Level,
    Policy,
    Registry,
    SkipReason,
    Status,
    SubjectError,
    SuiteResult,
)
from conformance._runner import RunOptions, run_cases
from conformance._trace import Trace


@dataclass
class FakeContext:
    trace: Trace = field(default_factory=Trace)
    closed: bool = False

    def verify(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class FakeSubject:
    def __init__(self, *, reachable: bool = True, crash_in: str = "") -> None:
        self.reachable = reachable
        self.crash_in = crash_in
        self.running = ""
        self.stopped = False

    @property
    def address(self) -> str:
        return "127.0.0.1:1"

    @property
    def description(self) -> str:
        return "fake"

    def replay_args(self) -> list[str]:
        return ["--address", self.address]

    def output_size(self) -> int:
        return 0

    def output_since(self, offset: int) -> str:
        return ""

    def request_stop(self) -> bool:
        return False

    async def start(self) -> None:
        if not self.reachable:
            raise SubjectError("nothing listens")

    async def after_case(self, failed: bool) -> str | None:
        return "the subject exited" if self.running == self.crash_in else None

    async def stop(self) -> None:
        self.stopped = True


REGISTRY: Registry[FakeContext] = Registry()


@REGISTRY.case("fake/pass", requirements=["AWP-A"])
async def _pass(ctx: FakeContext) -> None:
    """Passes."""
    ctx.trace.note("x", "ok")


@REGISTRY.case("fake/fail", requirements=["AWP-B"])
async def _fail(ctx: FakeContext) -> None:
    """Fails."""
    ctx.trace.sent("w", "a frame")
    raise CaseFailure("wrong answer")


@REGISTRY.case("fake/skip", requirements=["AWP-C"], level=Level.CAPABILITY)
async def _skip(ctx: FakeContext) -> None:
    """Skips itself."""
    raise CaseSkip(SkipReason.NOT_CLAIMED, "no such capability")


@REGISTRY.case("fake/error", requirements=["AWP-D"], level=Level.QUALITY)
async def _error(ctx: FakeContext) -> None:
    """Raises an unexpected error."""
    raise RuntimeError("boom")


async def _run(
    cases: list[Case[FakeContext]],
    subject: FakeSubject | None = None,
    expected: list[ExpectedFailure] | None = None,
) -> SuiteResult:
    subject = subject or FakeSubject()
    contexts: list[FakeContext] = []

    def make_context() -> FakeContext:
        ctx = FakeContext()
        contexts.append(ctx)
        return ctx

    def applicability(case: Case[FakeContext]) -> CaseSkip | None:
        subject.running = case.id
        return None

    result = await run_cases(
        "fake",
        cases,
        subject,
        known_case_ids=REGISTRY.ids(),
        make_context=make_context,
        applicability=applicability,
        options=RunOptions(expected_failures=expected or []),
    )
    assert all(c.closed for c in contexts)
    return result


def _case(case_id: str) -> Case[FakeContext]:
    case = REGISTRY.get(case_id)
    assert case is not None
    return case


@pytest.mark.asyncio
async def test_statuses_and_summary_line() -> None:
    result = await _run(REGISTRY.all())
    by_id = {r.case_id: r for r in result.results}
    assert by_id["fake/pass"].status is Status.PASS
    assert by_id["fake/fail"].status is Status.FAIL
    assert by_id["fake/fail"].message == "wrong answer"
    assert any("a frame" in line for line in by_id["fake/fail"].trace)
    assert "--case fake/fail" in by_id["fake/fail"].replay
    assert by_id["fake/skip"].status is Status.SKIP
    assert by_id["fake/skip"].skip_reason == "not claimed"
    assert by_id["fake/error"].status is Status.FAIL
    assert "RuntimeError: boom" in by_id["fake/error"].message
    assert result.summary_line() == "1 passed, 2 failed, 1 skipped"
    assert result.exit_code() == 1


@pytest.mark.asyncio
async def test_quality_failures_fail_only_the_should_policy() -> None:
    result = await _run([_case("fake/pass"), _case("fake/error")])
    assert result.exit_code(Policy.CORE) == 0
    assert result.exit_code(Policy.SHOULD) == 1


@pytest.mark.asyncio
async def test_unreachable_subject_is_no_result() -> None:
    result = await _run(REGISTRY.all(), FakeSubject(reachable=False))
    assert result.no_result.startswith("cannot reach the subject")
    assert result.results == []
    assert result.exit_code() == 2


@pytest.mark.asyncio
async def test_a_run_where_every_case_skips_is_no_result() -> None:
    result = await _run([_case("fake/skip")])
    assert result.no_result == "no case ran"
    assert result.summary_line() == "0 passed, 0 failed, 1 skipped"
    assert result.exit_code(Policy.SHOULD) == 2


@pytest.mark.asyncio
async def test_a_run_with_no_case_is_no_result() -> None:
    result = await _run([])
    assert result.no_result == "no case ran"
    assert result.exit_code() == 2


@pytest.mark.asyncio
async def test_a_crash_fails_the_running_case() -> None:
    result = await _run([_case("fake/pass"), _case("fake/skip")], FakeSubject(crash_in="fake/pass"))
    assert result.results[0].status is Status.FAIL
    assert result.results[0].message.startswith("the subject exited")


@pytest.mark.asyncio
async def test_expected_failure_is_xfail_and_does_not_fail_the_run() -> None:
    expected = [ExpectedFailure("fake/fail", "known bug")]
    result = await _run([_case("fake/pass"), _case("fake/fail")], expected=expected)
    assert result.results[1].status is Status.XFAIL
    assert "known bug" in result.results[1].message
    assert result.summary_line() == "1 passed, 0 failed, 1 skipped"
    assert result.exit_code(Policy.SHOULD) == 0


@pytest.mark.asyncio
async def test_unexpected_pass_fails_the_run() -> None:
    expected = [ExpectedFailure("fake/pass", "was broken")]
    result = await _run([_case("fake/pass")], expected=expected)
    assert result.results[0].status is Status.XPASS
    assert result.summary_line() == "0 passed, 1 failed, 0 skipped"
    assert result.exit_code() == 1


@pytest.mark.asyncio
async def test_stale_entry_fails_the_run() -> None:
    expected = [ExpectedFailure("fake/renamed", "old name")]
    result = await _run([_case("fake/pass")], expected=expected)
    assert result.problems
    assert "fake/renamed" in result.problems[0]
    assert result.summary_line() == "1 passed, 1 failed, 0 skipped"
    assert result.exit_code() == 1


@pytest.mark.asyncio
async def test_entry_for_a_case_not_selected_is_not_stale() -> None:
    expected = [ExpectedFailure("fake/fail", "known")]
    result = await _run([_case("fake/pass")], expected=expected)
    assert result.problems == []
    assert result.exit_code() == 0


def test_registry_selects_by_glob_requirement_and_level() -> None:
    assert [c.id for c in REGISTRY.select(globs=["fake/p*"])] == ["fake/pass"]
    assert [c.id for c in REGISTRY.select(requirements=["AWP-B"])] == ["fake/fail"]
    assert [c.id for c in REGISTRY.select(levels=[Level.QUALITY])] == ["fake/error"]
    with pytest.raises(ValueError, match="duplicate"):
        REGISTRY.add(_case("fake/pass"))
