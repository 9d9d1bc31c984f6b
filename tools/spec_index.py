#!/usr/bin/env python3
"""Build and check the machine-readable requirement index of spec/protocol.md.

    python tools/spec_index.py          # rewrite spec/requirements.json
    python tools/spec_index.py --check  # fail if it is stale or the spec is inconsistent

Checks: every tag is well formed, IDs are unique, the declared level is the
strongest RFC 2119 keyword of the statement, no lower-case "must"/"shall"/
"should" appears (so nobody writes a requirement that the index misses), every
link to a section anchor resolves, and every AWP ID cited in protos/ exists.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "protocol.md"
INDEX = ROOT / "spec" / "requirements.json"
PROTOS = ROOT / "protos"

TAG = re.compile(r"\*\*\[(AWP-[A-Z]+-\d{3})\]\*\* \((host|worker|peer), (MUST|SHOULD|MAY)\) ")
CITATION = re.compile(r"AWP-[A-Z]+-\d{3}")
HEADING = re.compile(r"^(#{2,4}) (.+)$")
VERSION = re.compile(r"protocol version \*\*([0-9A-Za-z.\-]+)\*\*")
LOWERCASE_KEYWORD = re.compile(r"(?<![`\w])(must|shall|should)(?![`\w])")
ANCHOR_LINK = re.compile(r"\]\(#([a-z0-9\-]+)\)")
LEVELS = ("MUST", "SHOULD", "MAY")
KEYWORD_LEVEL = {
    "MUST": "MUST",
    "MUST NOT": "MUST",
    "REQUIRED": "MUST",
    "SHALL": "MUST",
    "SHALL NOT": "MUST",
    "SHOULD": "SHOULD",
    "SHOULD NOT": "SHOULD",
    "RECOMMENDED": "SHOULD",
    "MAY": "MAY",
    "OPTIONAL": "MAY",
}
KEYWORD = re.compile(r"\b(MUST NOT|MUST|SHALL NOT|SHALL|SHOULD NOT|SHOULD|MAY)\b")


@dataclass(frozen=True)
class Requirement:
    """One tagged normative statement of the spec."""

    id: str
    subject: str
    level: str
    section: str
    text: str


def _paragraphs(lines: list[str]) -> Iterator[tuple[str, str]]:
    """Yield (section heading, paragraph text) for each paragraph of the spec."""
    section = ""
    block: list[str] = []
    for line in [*lines, ""]:
        heading = HEADING.match(line)
        if heading or not line.strip():
            if block:
                yield section, " ".join(part.strip() for part in block)
                block = []
            if heading:
                section = heading.group(2).strip()
            continue
        block.append(line)


def _anchor(heading: str) -> str:
    """Return the GitHub-style anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def parse(text: str) -> tuple[str, list[Requirement], list[str]]:
    """Return (spec version, requirements in document order, problems)."""
    problems: list[str] = []
    version_match = VERSION.search(text)
    version = version_match.group(1) if version_match else ""
    if not version:
        problems.append("no 'protocol version **X**' in the Status section")
    lines = text.splitlines()
    requirements: list[Requirement] = []
    in_code = False
    prose: list[str] = []
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
            prose.append("")
            continue
        prose.append("" if in_code else line)
    for section, paragraph in _paragraphs(prose):
        if "**[AWP-" in paragraph and not TAG.search(paragraph):
            problems.append(f"malformed requirement tag in section {section!r}: {paragraph[:80]}")
        for match in TAG.finditer(paragraph):
            statement = paragraph[match.end() :]
            next_tag = TAG.search(statement)
            if next_tag:
                statement = statement[: next_tag.start()]
            found = {KEYWORD_LEVEL[k] for k in KEYWORD.findall(statement)}
            strongest = next((level for level in LEVELS if level in found), None)
            req_id, subject, level = match.groups()
            if strongest is None:
                problems.append(f"{req_id}: no RFC 2119 keyword in its statement")
            elif strongest != level:
                problems.append(
                    f"{req_id}: tagged {level} but its strongest keyword is {strongest}"
                )
            requirements.append(Requirement(req_id, subject, level, section, statement.strip()))
    seen: set[str] = set()
    for requirement in requirements:
        if requirement.id in seen:
            problems.append(f"{requirement.id}: duplicate ID")
        seen.add(requirement.id)
    for number, line in enumerate(prose, start=1):
        if LOWERCASE_KEYWORD.search(line):
            problems.append(f"line {number}: lower-case RFC 2119 keyword: {line.strip()[:80]}")
    anchors = {_anchor(m.group(2)) for line in lines if (m := HEADING.match(line))}
    for link in ANCHOR_LINK.findall(text):
        if link not in anchors:
            problems.append(f"broken section link #{link}")
    for cited in sorted(set(CITATION.findall(text)) - seen):
        problems.append(f"{cited}: cited in the spec but never defined")
    return version, requirements, problems


def proto_citations() -> dict[str, list[str]]:
    """Return AWP IDs cited in proto comments, with the files citing them."""
    cited: dict[str, list[str]] = {}
    for path in sorted(PROTOS.rglob("*.proto")):
        for req_id in sorted(set(CITATION.findall(path.read_text()))):
            cited.setdefault(req_id, []).append(str(path.relative_to(ROOT)))
    return cited


def render(version: str, requirements: list[Requirement]) -> str:
    """Return the JSON text of the index."""
    document = {
        "spec": "spec/protocol.md",
        "version": version,
        "requirements": [asdict(r) for r in requirements],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail instead of rewriting")
    args = parser.parse_args()
    version, requirements, problems = parse(SPEC.read_text())
    defined = {r.id for r in requirements}
    for req_id, files in proto_citations().items():
        if req_id not in defined:
            problems.append(f"{req_id}: cited in {', '.join(files)} but not defined in the spec")
    if problems:
        for problem in problems:
            print(f"spec: {problem}", file=sys.stderr)
        return 1
    rendered = render(version, requirements)
    if args.check:
        if not INDEX.exists() or INDEX.read_text() != rendered:
            print("spec: spec/requirements.json is stale; run tools/spec_index.py", file=sys.stderr)
            return 1
        print(f"spec: {len(requirements)} requirements, index up to date")
        return 0
    INDEX.write_text(rendered)
    print(f"spec: wrote {len(requirements)} requirements to {INDEX.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
