"""Runs the mutation matrix: each mutant against the cases expected to catch it (one suite
run and one subject process per mutant, several runs at a time), the unmodified subjects
against every such case, and the host mutants again in the suite's legacy mode.

``python -m tests.conformance.mutants.run [--jobs N] [--only NAME ...]`` prints one line per
run and exits non-zero when a mutant escapes or an unmodified subject fails. ``--record``
writes the steps that caught each mutant to ``caught_steps.json``, which the table shows."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from agentworker.v1 import agentworker_pb2 as pb
from conformance._host_suite import run_host_suite_async, select_host_cases
from conformance._report_json import report_dict
from conformance._results import Policy, SuiteResult
from conformance._secure_host import secure_commands
from conformance._subject import SpawnedSubject
from conformance._worker_subject import WorkerSubject
from conformance._worker_suite import run_worker_suite_async, select_worker_cases
from tests.conformance.mutants._model import Mutant
from tests.conformance.mutants._verdicts import case_of, caught_by, has_step_verdicts
from tests.conformance.mutants.catalogue import all_mutants
from tests.conformance.mutants.expectations import KNOWN_ESCAPES, LEGACY_NOT_CAUGHT
from tests.conformance.mutants.subject import SCRIPT, UNMODIFIED
from tests.conformance.mutants.table import CAUGHT_STEPS, legacy_cases, recorded_steps

__all__ = ["Outcome", "Run", "baseline_runs", "legacy_cases", "mutant_runs", "run_all"]

# Waits are scaled. A mutant is usually caught by waiting out a deadline, so its runs keep
# the suite's own; the unmodified subjects must pass on a busy machine, and a run that did
# not reach its subject in time is repeated alone with the longer waits.
MUTANT_SCALE = 1.0
CAREFUL_SCALE = 2.0
_RUN_LIMIT_S = 300.0
_CLAIMS = {"worker/security/tls": "TLS", "worker/security/mutual-tls": "MUTUAL_TLS"}
_CLAIMS["worker/security/bearer-token"] = "BEARER_TOKEN"


@dataclass(frozen=True, slots=True)
class Run:
    """One suite run: a mutant (or the unmodified subject) against some cases."""

    side: str
    name: str
    cases: tuple[str, ...]
    legacy: bool = False
    mutant: Mutant | None = None
    host_args: tuple[str, ...] = ()
    scale: float = MUTANT_SCALE

    @property
    def label(self) -> str:
        """Return a short label for output."""
        return f"{self.side}:{self.name}{' (legacy)' if self.legacy else ''}"


@dataclass(slots=True)
class Outcome:
    """What one run showed."""

    run: Run
    returncode: int
    caught: list[str] = field(default_factory=list)  # cases/steps failing on the requirement
    failed: list[str] = field(default_factory=list)  # every failed case
    statuses: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""
    no_result: str = ""  # the run reached no verdict (the subject did not start, ...)
    collateral: list[str] = field(default_factory=list)  # spared requirements that failed

    @property
    def ok(self) -> bool:
        """Return whether the run showed what it should: a mutant caught on every case
        expected to catch it, an unmodified subject passing every case it ran."""
        if self.no_result:
            return False
        if self.run.mutant is None:
            return self.returncode == 0 and not self.failed
        if self.collateral:
            return False
        caught_cases = {case_of(c) for c in self.caught}
        return set(self.run.cases) <= caught_cases or self.expected_escape != ""

    @property
    def expected_escape(self) -> str:
        """Return why this mutant run is known to escape, or ""."""
        mutant = self.run.mutant
        if mutant is None:
            return ""
        if self.run.legacy:
            return LEGACY_NOT_CAUGHT.get(mutant.name, "")
        return KNOWN_ESCAPES.get(mutant.key, "")

    @property
    def stale_expectation(self) -> bool:
        """Return whether a run listed as escaping was caught after all."""
        return bool(self.expected_escape) and bool(self.caught) and not self.no_result

    def verdict(self) -> str:
        """Return a one-line description of the outcome."""
        if self.no_result:
            state = f"NO RESULT: {self.no_result}"
        elif self.run.mutant is None:
            state = "passes" if self.ok else f"FAILS {self.failed or self.returncode}"
        else:
            escaped = not self.caught
            if self.expected_escape and escaped:
                state = f"escapes, as expected: {self.expected_escape}"
            elif self.stale_expectation:
                state = f"caught by {self.caught}, although listed as escaping"
            elif self.collateral:
                state = f"caught, but also failed the spared {self.collateral}"
            elif self.ok:
                state = f"caught by {self.caught}"
            else:
                state = f"ESCAPES (caught: {self.caught})"
        return f"{self.run.label}: {state} ({self.seconds:.1f} s)"


def _subject(side: str, name: str, host_args: Sequence[str]) -> list[str]:
    command = [sys.executable, str(SCRIPT), side, name]
    if side == "host":
        command += ["--address", "{address}", "--log-level", "WARNING", *host_args]
    return command


def _secure(subject: list[str]) -> dict[int, list[str]]:
    host = shlex.join(subject)
    tls = f"{host} --tls-cert {{tls_cert}} --tls-key {{tls_key}}"
    return secure_commands(tls, f"{tls} --client-ca {{client_ca}}", f"{host} --tokens {{tokens}}")


async def _suite(run: Run) -> SuiteResult:
    command = _subject(run.side, run.name, run.host_args)
    if run.side == "host":
        cases = select_host_cases(run.cases, (), ())
        secure = _secure(command) if any("/security/" in c for c in run.cases) else None
        return await run_host_suite_async(
            SpawnedSubject(command, scale=run.scale),
            cases=cases,
            legacy=run.legacy,
            scale=run.scale,
            secure_commands=secure,
        )
    claims = {_CLAIMS[c] for c in run.cases if c in _CLAIMS}
    if run.mutant is not None:
        claims.update(run.mutant.claims)
    return await run_worker_suite_async(
        WorkerSubject(command, listen="127.0.0.1:0", scale=run.scale),
        cases=select_worker_cases(run.cases, (), ()),
        scale=run.scale,
        claims=[pb.Capability.Value(f"CAPABILITY_{name}") for name in sorted(claims)],
    )


async def execute(run: Run) -> Outcome:
    """Run the suite for ``run`` (its subject in a child process) and read its report."""
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(_suite(run), _RUN_LIMIT_S)
    except TimeoutError:
        outcome = Outcome(run, 2, seconds=time.monotonic() - started)
        outcome.no_result = f"the run did not finish within {_RUN_LIMIT_S:.0f} s"
        return outcome
    except Exception as exc:  # a harness error is this run's failure, not the matrix's
        outcome = Outcome(run, 2, seconds=time.monotonic() - started)
        outcome.no_result = f"the run failed: {type(exc).__name__}: {exc}"
        return outcome
    report = report_dict(result)
    outcome = Outcome(run, result.exit_code(Policy.SHOULD), seconds=time.monotonic() - started)
    outcome.no_result = result.no_result
    cases = report.get("cases", [])
    outcome.statuses = {c["id"]: c["status"] for c in cases}
    outcome.failed = [c["id"] for c in cases if c["status"] in ("FAIL", "XPASS")]
    outcome.output = "\n".join(f"{c['id']}: {c['status']} {c.get('message', '')}" for c in cases)
    if run.mutant is not None:
        outcome.caught = caught_by(report, run.mutant.requirement)
        if has_step_verdicts(report):
            outcome.collateral = [r for r in run.mutant.spares if caught_by(report, r)]
    return outcome


def mutant_runs(mutants: Iterable[Mutant], *, legacy: bool = False) -> list[Run]:
    """Return one run per mutant (in legacy mode: per host mutant with applicable cases)."""
    runs = []
    for m in mutants:
        cases = legacy_cases(m) if legacy else m.catches
        if cases and (m.side == "host" or not legacy):
            runs.append(Run(m.side, m.name, cases, legacy, m, m.host_args))
    return runs


def baseline_runs(mutants: Iterable[Mutant]) -> list[Run]:
    """Return the runs of the unmodified subjects over every case some mutant runs."""
    chosen = list(mutants)
    runs = []
    for side in ("host", "worker"):
        cases = sorted({c for m in chosen if m.side == side for c in m.catches})
        if cases:
            runs.append(Run(side, UNMODIFIED, tuple(cases), scale=CAREFUL_SCALE))
    host_legacy = sorted({c for m in chosen for c in legacy_cases(m)})
    if host_legacy:
        runs.append(Run("host", UNMODIFIED, tuple(host_legacy), legacy=True, scale=CAREFUL_SCALE))
    return runs


def run_all(runs: Sequence[Run], jobs: int, *, echo: bool = False) -> list[Outcome]:
    """Execute ``runs``, ``jobs`` at a time in one event loop (the subjects are child
    processes), longest first; return the outcomes in ``runs`` order."""

    async def all_runs() -> list[Outcome]:
        gate = asyncio.Semaphore(jobs)

        async def one(run: Run) -> Outcome:
            async with gate:
                outcome = await execute(run)
            if echo:
                print(outcome.verdict(), flush=True)
            return outcome

        # Longest first, so that no long run starts last: the flow cases wait out
        # slow-consumer timeouts (30 s and more), then the runs with the most cases.
        order = sorted(range(len(runs)), key=lambda i: _expected_length(runs[i]))
        done = await asyncio.gather(*(one(runs[i]) for i in order))
        by_index = dict(zip(order, done, strict=True))
        return [by_index[i] for i in range(len(runs))]

    outcomes = asyncio.run(all_runs())
    # A run can lose to the load of the runs beside it (a subject too slow to start, a timed
    # case of an unmodified subject, a mutant's host that started too late for the step that
    # catches it); such runs are repeated once, alone. A mutant keeps the suite's own waits,
    # which may be what catches it, so a real escape escapes again.
    again = [i for i, o in enumerate(outcomes) if not o.ok]
    for i in again:
        scale = CAREFUL_SCALE if runs[i].mutant is None else MUTANT_SCALE
        outcomes[i] = asyncio.run(execute(replace(runs[i], scale=scale)))
        if echo:
            print(f"again, alone: {outcomes[i].verdict()}", flush=True)
    return outcomes


def _expected_length(run: Run) -> tuple[bool, int]:
    """Return a sort key putting the runs expected to take longest first."""
    return (not any(case.startswith("host/flow/") for case in run.cases), -len(run.cases))


def record(outcomes: Sequence[Outcome]) -> None:
    """Write, for each mutant caught on a v1 run, the cases and steps that caught it (kept
    for mutants not run now)."""
    steps = recorded_steps()
    for o in outcomes:
        m = o.run.mutant
        if m is not None and not o.run.legacy and o.ok and o.caught:
            steps[m.key] = [c for c in o.caught if case_of(c) in m.catches]
    text = json.dumps(dict(sorted(steps.items())), indent=2, sort_keys=True)
    CAUGHT_STEPS.write_text(text + "\n")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix (or the named mutants) and print each outcome."""
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.mutants.run")
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--only", action="append", default=[], help="mutant name (repeatable)")
    parser.add_argument("--no-legacy", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print the output of escapes")
    parser.add_argument("--record", action="store_true", help="write caught_steps.json")
    args = parser.parse_args(argv)
    # Stopped from outside (a test's timeout), still stop every subject process started.
    signal.signal(signal.SIGTERM, _interrupt)
    mutants = [m for m in all_mutants() if not args.only or m.name in args.only]
    runs = mutant_runs(mutants)
    if not args.no_legacy:
        runs += mutant_runs(mutants, legacy=True)
    if not args.no_baseline:
        runs += baseline_runs(mutants)
    started = time.monotonic()
    outcomes = run_all(runs, args.jobs, echo=True)
    bad = [o for o in outcomes if not o.ok or o.stale_expectation]
    if args.record:
        record(outcomes)
    for outcome in bad:
        print(f"NOT OK: {outcome.verdict()}")
        if args.verbose:
            print(outcome.output)
    print(
        f"{len(mutants)} mutants, {len(outcomes)} runs, {len(bad)} not ok, "
        f"{time.monotonic() - started:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
