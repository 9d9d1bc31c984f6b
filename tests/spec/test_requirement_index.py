"""The spec, its requirement index and the proto citations agree."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spec_index", ROOT / "tools" / "spec_index.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spec_index"] = module
    spec.loader.exec_module(module)
    return module


spec_index = _load_tool()


def test_spec_is_consistent_and_index_is_current() -> None:
    version, requirements, problems = spec_index.parse((ROOT / "spec" / "protocol.md").read_text())
    assert problems == []
    index = json.loads((ROOT / "spec" / "requirements.json").read_text())
    assert index["version"] == version
    assert [r["id"] for r in index["requirements"]] == [r.id for r in requirements]
    assert index == json.loads(spec_index.render(version, requirements))


def test_every_id_cited_in_protos_is_defined() -> None:
    _, requirements, _ = spec_index.parse((ROOT / "spec" / "protocol.md").read_text())
    defined = {r.id for r in requirements}
    cited = spec_index.proto_citations()
    assert cited, "the protos cite requirement IDs"
    assert sorted(set(cited) - defined) == []


def test_index_covers_every_area_the_issue_names() -> None:
    index = json.loads((ROOT / "spec" / "requirements.json").read_text())
    areas = {r["id"].split("-")[1] for r in index["requirements"]}
    assert {
        "CONN",
        "VER",
        "SEC",
        "REG",
        "SUB",
        "PUB",
        "RPC",
        "ERR",
        "FLOW",
        "BAT",
        "CTL",
        "SHR",
        "OBS",
        "CNF",
    } <= areas


SPEC_HEAD = "Draft, protocol version **1.0.0**.\n\n"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (
            "**[AWP-X-001]** (host, MUST) A MUST.\n\n**[AWP-X-001]** (host, MUST) B MUST.\n",
            "duplicate ID",
        ),
        ("**[AWP-X-001]** (host, MUST) The host SHOULD do it.\n", "strongest keyword is SHOULD"),
        ("**[AWP-X-001]** (host, MUST) The host does it.\n", "no RFC 2119 keyword"),
        ("The host must do it.\n", "lower-case RFC 2119 keyword"),
        ("**[AWP-X-1]** (host, MUST) The host MUST.\n", "malformed requirement tag"),
        ("See [there](#9-nowhere).\n", "broken section link"),
        ("As [AWP-X-002] says.\n", "cited in the spec but never defined"),
    ],
)
def test_checker_rejects_broken_specs(body: str, complaint: str) -> None:
    _, _, problems = spec_index.parse(SPEC_HEAD + body)
    assert any(complaint in p for p in problems), problems


def test_checker_reads_a_good_statement() -> None:
    _, requirements, problems = spec_index.parse(
        SPEC_HEAD + "## 4. Area\n\n**[AWP-X-001]** (worker, SHOULD) A worker SHOULD\nwrap.\n"
    )
    assert problems == []
    assert [(r.id, r.subject, r.level, r.section, r.text) for r in requirements] == [
        ("AWP-X-001", "worker", "SHOULD", "4. Area", "A worker SHOULD wrap.")
    ]
