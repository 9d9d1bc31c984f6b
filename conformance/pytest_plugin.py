"""pytest integration: run the host or worker suite inside a Python project's own tests.

Enable it with ``pytest_plugins = ["conformance.pytest_plugin"]`` in the top-level
conftest.py (or ``-p conformance.pytest_plugin``), then::

    def test_my_host_conforms(conformance_host_suite, my_host_address):
        result = conformance_host_suite(address=my_host_address)
        assert_conformant(result)

    def test_my_worker_conforms(conformance_worker_suite):
        result = conformance_worker_suite(command=["my-worker"])
        assert_conformant(result)

``conformance_host_suite`` is ``run_host_suite`` and ``conformance_worker_suite`` is
``run_worker_suite`` (both blocking; call them from a synchronous test).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from conformance._api import run_host_suite, run_worker_suite
from conformance._console import print_summary
from conformance._results import Policy, SuiteResult

__all__ = [
    "assert_conformant",
    "conformance_host_suite",
    "conformance_worker_suite",
    "run_host_suite",
    "run_worker_suite",
]


def assert_conformant(result: SuiteResult, policy: Policy = Policy.CORE) -> None:
    """Fail the calling test, with the console report, unless ``result`` succeeded."""
    if not result.ok(policy):
        out = io.StringIO()
        print_summary(result, out)
        pytest.fail(out.getvalue(), pytrace=False)


@pytest.fixture
def conformance_host_suite() -> Callable[..., SuiteResult]:
    """Return ``run_host_suite``: run the host suite against an address or a command."""
    return run_host_suite


@pytest.fixture
def conformance_worker_suite() -> Callable[..., SuiteResult]:
    """Return ``run_worker_suite``: run the worker suite against a command (or attach)."""
    return run_worker_suite
