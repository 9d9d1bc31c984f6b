"""The schemas pass `buf lint`, and the breaking-change guard really rejects breaking edits.

The guard (scripts/check-breaking) compares protos/ with baseline/agentworker-v1.binpb. Here it
runs against copies of the module with one deliberate break each, and must fail every time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE = REPO_ROOT / "baseline" / "agentworker-v1.binpb"
AGENTWORKER_PROTO = Path("protos/agentworker/v1/agentworker.proto")
CLOUDEVENTS_PROTO = Path("protos/agentworker/cloudevents/v1/cloudevents.proto")
# buf comes from the buf-bin package in the same environment as the tests (scripts/setup).
BUF = Path(sys.executable).with_name("buf")


def _buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _copy_module(destination: Path) -> Path:
    shutil.copy2(REPO_ROOT / "buf.yaml", destination / "buf.yaml")
    shutil.copytree(REPO_ROOT / "protos", destination / "protos")
    return destination


def test_buf_is_installed() -> None:
    assert BUF.is_file(), f"{BUF} is missing: run scripts/setup"


def test_buf_lint_passes() -> None:
    result = _buf("lint", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_protos_are_compatible_with_baseline() -> None:
    result = _buf("breaking", "protos", "--against", str(BASELINE), cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unchanged_copy_passes_the_guard(tmp_path: Path) -> None:
    """Control for the cases below: copying the module alone breaks nothing."""
    module = _copy_module(tmp_path)
    result = _buf("breaking", "protos", "--against", str(BASELINE), cwd=module)
    assert result.returncode == 0, result.stdout + result.stderr


# Each case: file, exact text to replace (must occur once), replacement, text buf must report.
BREAKS = {
    "renumbered-field": (
        AGENTWORKER_PROTO,
        "uint64 timeout_ms = 7;",
        "uint64 timeout_ms = 17;",
        'field "7" with name "timeout_ms"',
    ),
    "changed-field-type": (
        AGENTWORKER_PROTO,
        "  string request_id = 1;\n  // Names the calling agent",
        "  bytes request_id = 1;\n  // Names the calling agent",
        "RpcRequest",
    ),
    "removed-rpc": (
        AGENTWORKER_PROTO,
        "  rpc GetSubscriptions(GetSubscriptionsRequest) returns (GetSubscriptionsResponse);\n",
        "",
        "GetSubscriptions",
    ),
    "removed-enum-value": (
        AGENTWORKER_PROTO,
        "  ERROR_CODE_SHUTTING_DOWN = 9;\n",
        "",
        'enum value "9" on enum "ErrorCode"',
    ),
    "changed-cloudevents-oneof": (
        CLOUDEVENTS_PROTO,
        "int32 ce_integer = 2;",
        "int64 ce_integer = 2;",
        "ce_integer",
    ),
}


@pytest.mark.parametrize(("path", "old", "new", "reported"), BREAKS.values(), ids=BREAKS.keys())
def test_breaking_change_is_rejected(
    tmp_path: Path, path: Path, old: str, new: str, reported: str
) -> None:
    module = _copy_module(tmp_path)
    proto = module / path
    text = proto.read_text()
    assert text.count(old) == 1, f"the text to break is not in {path} exactly once: {old!r}"
    proto.write_text(text.replace(old, new))

    result = _buf("breaking", "protos", "--against", str(BASELINE), cwd=module)

    assert result.returncode != 0, "buf breaking accepted a breaking change"
    assert reported in result.stdout + result.stderr
