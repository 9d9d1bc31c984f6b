"""The console report: one line per case, details of each failure, the summary line."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from conformance._results import CaseResult, Status, SuiteResult
from conformance._steps import Verdict

__all__ = ["print_case", "print_footer", "print_header", "print_summary"]


def _label(r: CaseResult) -> str:
    if r.status is Status.SKIP:
        return f"SKIP({r.skip_reason})"
    return str(r.status.value)


def print_case(r: CaseResult, out: TextIO) -> None:
    """Print one case's status line and, for a failure, its message, trace and replay."""
    reqs = ",".join(r.requirements)
    out.write(f"{_label(r):<22} {r.case_id}  [{reqs}] ({r.duration_s:.2f} s)\n")
    if r.status is Status.SKIP or r.status is Status.PASS:
        return
    for o in r.outcomes:
        where = f"step {o.step!r}" if o.step is not None else "decided by case"
        out.write(f"    {o.requirement:<14} {o.verdict.value:<14} {where}\n")
    for line in r.message.splitlines() or [""]:
        out.write(f"    {line}\n")
    if r.counts_as_failure:
        if r.trace:
            out.write("    wire trace:\n")
            for line in r.trace:
                out.write(f"      {line}\n")
        out.write(f"    replay: {r.replay}\n")


def print_header(
    harness_version: str, spec_version: str, suite: str, subject: str, out: TextIO
) -> None:
    """Print the line that opens a run's report."""
    out.write(
        f"agentworker conformance {harness_version}, spec {spec_version}, "
        f"{suite} suite, subject {subject}\n"
    )


def print_summary(result: SuiteResult, out: TextIO) -> None:
    """Print the whole report: header, every case, footer."""
    print_header(result.harness_version, result.spec_version, result.suite, result.subject, out)
    for r in result.results:
        print_case(r, out)
    print_footer(result, out)


def print_footer(result: SuiteResult, out: TextIO) -> None:
    """Print the run's problems and end with the summary line (then NO RESULT, if so)."""
    for problem in result.problems:
        out.write(f"PROBLEM {problem}\n")
    verdicts = Counter(o.verdict for r in result.results for o in r.outcomes)
    if verdicts:
        counts = ", ".join(f"{verdicts[v]} {v.value}" for v in Verdict if verdicts[v])
        out.write(f"requirement verdicts over cases: {counts}\n")
    out.write(result.summary_line() + "\n")
    if result.no_result:
        first, *details = result.no_result.splitlines() or [""]
        for line in details:
            out.write(f"    {line}\n")
        out.write(f"NO RESULT: {first}\n")
