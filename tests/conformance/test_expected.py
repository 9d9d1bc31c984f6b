"""Loading expected-failure files (TOML and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import ExpectedFailure, load_expected_failures


def test_toml(tmp_path: Path) -> None:
    path = tmp_path / "xf.toml"
    path.write_text(
        '[[expected_failures]]\ncase = "host/rpc/routing"\nreason = "not yet"\n',
        encoding="utf-8",
    )
    assert load_expected_failures(path) == [ExpectedFailure("host/rpc/routing", "not yet")]


@pytest.mark.parametrize("wrapped", [False, True])
def test_json_list_or_object(tmp_path: Path, wrapped: bool) -> None:
    entries = [{"case": "host/a", "reason": "r"}]
    path = tmp_path / "xf.json"
    path.write_text(json.dumps({"expected_failures": entries} if wrapped else entries))
    assert load_expected_failures(path) == [ExpectedFailure("host/a", "r")]


@pytest.mark.parametrize(
    "entries",
    [[{"reason": "no case"}], [{"case": "host/a"}], [{"case": "host/a", "reason": " "}], "x"],
)
def test_malformed_entries_are_rejected(tmp_path: Path, entries: object) -> None:
    path = tmp_path / "xf.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"xf\.json"):
        load_expected_failures(path)


@pytest.mark.parametrize(
    "subject", ["reference_host", "reference_worker", "go_worker", "typescript_worker"]
)
def test_shipped_subject_lists_are_valid(subject: str) -> None:
    path = Path(__file__).resolve().parents[2] / "conformance" / "expected" / f"{subject}.toml"
    for entry in load_expected_failures(path):
        assert entry.reason
