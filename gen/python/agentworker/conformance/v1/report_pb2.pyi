from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConformanceReport(_message.Message):
    __slots__ = ("harness_version", "spec_version", "suite", "subject", "manifest", "summary", "problems", "cases", "requirements", "untested_must", "untested_must_reasons")
    class UntestedMustReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HARNESS_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    UNTESTED_MUST_FIELD_NUMBER: _ClassVar[int]
    UNTESTED_MUST_REASONS_FIELD_NUMBER: _ClassVar[int]
    harness_version: str
    spec_version: str
    suite: str
    subject: str
    manifest: str
    summary: Summary
    problems: _containers.RepeatedScalarFieldContainer[str]
    cases: _containers.RepeatedCompositeFieldContainer[CaseReport]
    requirements: _containers.RepeatedCompositeFieldContainer[RequirementVerdict]
    untested_must: _containers.RepeatedScalarFieldContainer[str]
    untested_must_reasons: _containers.ScalarMap[str, str]
    def __init__(self, harness_version: _Optional[str] = ..., spec_version: _Optional[str] = ..., suite: _Optional[str] = ..., subject: _Optional[str] = ..., manifest: _Optional[str] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., problems: _Optional[_Iterable[str]] = ..., cases: _Optional[_Iterable[_Union[CaseReport, _Mapping]]] = ..., requirements: _Optional[_Iterable[_Union[RequirementVerdict, _Mapping]]] = ..., untested_must: _Optional[_Iterable[str]] = ..., untested_must_reasons: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("passed", "failed", "skipped", "line", "no_result")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    NO_RESULT_FIELD_NUMBER: _ClassVar[int]
    passed: int
    failed: int
    skipped: int
    line: str
    no_result: str
    def __init__(self, passed: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., line: _Optional[str] = ..., no_result: _Optional[str] = ...) -> None: ...

class CaseReport(_message.Message):
    __slots__ = ("id", "status", "skip_reason", "level", "requirements", "duration_s", "message", "trace", "replay")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASON_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    skip_reason: str
    level: str
    requirements: _containers.RepeatedScalarFieldContainer[str]
    duration_s: float
    message: str
    trace: _containers.RepeatedScalarFieldContainer[str]
    replay: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., skip_reason: _Optional[str] = ..., level: _Optional[str] = ..., requirements: _Optional[_Iterable[str]] = ..., duration_s: _Optional[float] = ..., message: _Optional[str] = ..., trace: _Optional[_Iterable[str]] = ..., replay: _Optional[str] = ...) -> None: ...

class RequirementVerdict(_message.Message):
    __slots__ = ("id", "level", "verdict", "cases")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    id: str
    level: str
    verdict: str
    cases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., level: _Optional[str] = ..., verdict: _Optional[str] = ..., cases: _Optional[_Iterable[str]] = ...) -> None: ...
