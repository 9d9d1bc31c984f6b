"""Conformance suite for agentworker hosts (and, later, workers).

Run it from the command line (`python -m conformance host --address HOST:PORT`), from pytest
(`conformance.pytest_plugin`), or from Python with `run_host_suite`.
"""

from __future__ import annotations

from conformance._api import run_host_suite
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
from conformance.host_cases import HOST_CASES

__all__ = [
    "HARNESS_VERSION",
    "HOST_CASES",
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
    "apply_expected_failures",
    "load_expected_failures",
    "load_spec_index",
    "run_host_suite",
    "run_host_suite_async",
    "select_host_cases",
]
