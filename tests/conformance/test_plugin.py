"""The pytest plugin runs the host suite in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import Policy, Status, SuiteResult
from conformance.pytest_plugin import assert_conformant

TINY_HOST = Path(__file__).resolve().parent / "fixtures" / "tiny_host.py"


def test_run_host_suite_in_process(conformance_host_suite: Callable[..., SuiteResult]) -> None:
    result = conformance_host_suite(
        command=[sys.executable, str(TINY_HOST), "--address", "{address}"],
        cases=["host/rpc/*"],
        timeout_scale=2.0,
    )
    assert result.results
    assert all(r.status is Status.PASS for r in result.results)
    assert_conformant(result, Policy.SHOULD)


def test_assert_conformant_fails_with_the_report(
    conformance_host_suite: Callable[..., SuiteResult],
) -> None:
    result = conformance_host_suite(
        command=[
            sys.executable,
            str(TINY_HOST),
            "--address",
            "{address}",
            "--defect",
            "fanout-to-all",
        ],
        cases=["host/publish/fan-out-exactness"],
        timeout_scale=2.0,
    )
    with pytest.raises(pytest.fail.Exception, match="0 passed, 1 failed, 0 skipped"):
        assert_conformant(result)


def test_run_host_suite_needs_one_subject(
    conformance_host_suite: Callable[..., SuiteResult],
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        conformance_host_suite()
