"""The mutation matrix: every MUST a conformance case cites has a mutant (a reference host or
worker with that MUST broken), the suite fails each mutant on a case citing the broken MUST
and passes the unmodified subjects, and conformance/MUTATION_MATRIX.md is current."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conformance._spec import load_spec_index
from tests.cluster._cluster_mutants import CLUSTER_MUTANTS
from tests.conformance.conftest import ROOT
from tests.conformance.mutants._verdicts import case_of, caught_by, has_step_verdicts
from tests.conformance.mutants.catalogue import all_mutants
from tests.conformance.mutants.expectations import (
    KNOWN_ESCAPES,
    LEGACY_NOT_CAUGHT,
    NO_MUTANT_YET,
)
from tests.conformance.mutants.run import legacy_cases
from tests.conformance.mutants.table import REGISTRIES, TABLE, cited_musts, render


def test_every_cited_must_has_a_mutant_on_each_suite() -> None:
    spec = load_spec_index()
    mutants = all_mutants()
    for side in REGISTRIES:
        cited = set(cited_musts(side, spec))
        broken = {m.requirement for m in mutants if m.side == side}
        if side == "host":
            broken |= {m.requirement for m in CLUSTER_MUTANTS}
        # The MUSTs listed as having no mutant yet are exactly those without one.
        pending = set(NO_MUTANT_YET.get(side, {}))
        assert cited - broken == pending, (
            f"{side}: MUSTs without a mutant {sorted(cited - broken - pending)}; "
            f"listed but having one or not cited {sorted(pending - (cited - broken))}"
        )
        assert broken <= cited, f"{side} mutants of uncited MUSTs: {sorted(broken - cited)}"


def test_each_mutant_is_expected_on_cases_citing_its_requirement() -> None:
    keys = [m.key for m in all_mutants()]
    assert len(keys) == len(set(keys)), "mutant names repeat"
    for m in all_mutants():
        assert m.catches, m.key
        for case_id in m.catches:
            case = REGISTRIES[m.side].get(case_id)
            assert case is not None, f"{m.key}: no case {case_id}"
            assert m.requirement in case.requirements, f"{m.key}: {case_id} does not cite it"


def test_expectation_lists_name_real_mutants() -> None:
    keys = {m.key for m in all_mutants()}
    assert set(KNOWN_ESCAPES) <= keys
    with_legacy_runs = {m.name for m in all_mutants() if legacy_cases(m)}
    assert set(LEGACY_NOT_CAUGHT) <= with_legacy_runs


def test_committed_table_is_current() -> None:
    assert TABLE.read_text() == render(), "run: python -m tests.conformance.mutants.table"


def test_caught_by_reads_step_verdicts_and_falls_back_to_failed_cases() -> None:
    old = {
        "cases": [
            {"id": "a", "status": "FAIL", "requirements": ["R1", "R2"]},
            {"id": "b", "status": "PASS", "requirements": ["R1"]},
        ]
    }
    assert caught_by(old, "R1") == ["a"]
    assert caught_by(old, "R3") == []
    new = {
        "cases": [
            {
                "id": "a",
                "status": "FAIL",
                "requirements": [
                    {"id": "R1", "verdict": "pass", "step": "first"},
                    {"id": "R2", "verdict": "fail", "step": "second"},
                    {"id": "R3", "verdict": "not_reached", "step": "third"},
                ],
            }
        ]
    }
    assert caught_by(new, "R1") == []
    assert caught_by(new, "R2") == ["a#second"]
    assert caught_by(new, "R3") == []
    assert case_of("a#second") == "a"
    assert has_step_verdicts(new)
    assert not has_step_verdicts(old)


@pytest.mark.slow
def test_suite_catches_every_mutant_and_passes_the_unmodified_subjects() -> None:
    # One child process runs the whole matrix (its own event loop, its own warnings); each
    # mutant run starts one subject process. Runs mostly wait, so six share two cores.
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tests.conformance.mutants.run", "--jobs", "6"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1500,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
    assert f"{len(all_mutants())} mutants" in done.stdout
    print(f"mutation matrix: {elapsed:.0f} s")
