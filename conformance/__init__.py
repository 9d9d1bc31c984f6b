"""Conformance suites for agentworker hosts and workers.

Run them from the command line (`python -m conformance host --address HOST:PORT`,
`python -m conformance worker -- WORKER COMMAND`), from pytest (`conformance.pytest_plugin`),
or from Python with `run_host_suite` and `run_worker_suite`.
"""

from __future__ import annotations

from conformance._api import run_host_suite, run_worker_suite
from conformance._cases import Case, CaseFailure, CaseSkip, Level, Registry, SkipReason
from conformance._expected import (
    ExpectedFailure,
    apply_expected_failures,
    load_expected_failures,
)
from conformance._host_context import HostContext
from conformance._host_suite import run_host_suite_async, select_host_cases
from conformance._results import CaseResult, Policy, Status, SuiteResult
from conformance._spec import Requirement, SpecIndex, load_spec_index
from conformance._subject import AttachedSubject, SpawnedSubject, Subject, SubjectError
from conformance._version import HARNESS_VERSION
from conformance._worker import RawWorker
from conformance._worker_context import WorkerContext
from conformance._worker_subject import WorkerSubject
from conformance._worker_suite import run_worker_suite_async, select_worker_cases
from conformance.host_cases import HOST_CASES
from conformance.worker_cases import WORKER_CASES

__all__ = [
    "HARNESS_VERSION",
    "HOST_CASES",
    "WORKER_CASES",
    "AttachedSubject",
    "Case",
    "CaseFailure",
    "CaseResult",
    "CaseSkip",
    "ExpectedFailure",
    "HostContext",
    "Level",
    "Policy",
    "RawWorker",
    "Registry",
    "Requirement",
    "SkipReason",
    "SpawnedSubject",
    "SpecIndex",
    "Status",
    "Subject",
    "SubjectError",
    "SuiteResult",
    "WorkerContext",
    "WorkerSubject",
    "apply_expected_failures",
    "load_expected_failures",
    "load_spec_index",
    "run_host_suite",
    "run_host_suite_async",
    "run_worker_suite",
    "run_worker_suite_async",
    "select_host_cases",
    "select_worker_cases",
]
