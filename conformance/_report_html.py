"""The HTML report: a self-contained page that opens on a summary per spec section (bars of
passed / failed / not reached requirements), then the failures (each requirement's text beside
its verdict, the deciding step, the replay command, the wire trace folded), then every case and
the requirement matrix. Every value is escaped."""

from __future__ import annotations

from collections import Counter
from html import escape

from conformance._coverage_gaps import NOT_COVERED
from conformance._matrix import MatrixRow, requirement_matrix
from conformance._results import CaseResult, Status, SuiteResult
from conformance._spec import SpecIndex
from conformance._steps import RequirementOutcome

__all__ = ["html_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; margin-bottom: 2em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; text-align: left; }
.pass { background: #dfd; } .fail, .xpass { background: #fdd; } .xfail { background: #ffd; }
.skip, .not_applicable, .untested { background: #eee; } .not_reached { background: #fec; }
pre { white-space: pre-wrap; margin: 0; font-size: 85%; }
.bar { display: flex; width: 24em; height: 1em; border: 1px solid #999; }
.bar span { display: block; height: 100%; }
.bar .pass { background: #4a4; } .bar .fail { background: #d44; }
.bar .not_reached { background: #e93; } .bar .other { background: #ccc; }
.failure { border: 2px solid #d44; padding: 0.5em 1em; margin-bottom: 1em; }
.req { font-size: 90%; color: #333; }
code.replay { background: #f4f4f4; padding: 0.1em 0.3em; }
"""

_BAR_KINDS = ("pass", "fail", "not_reached")


def _section_summary(rows: list[MatrixRow]) -> list[str]:
    by_section: dict[str, Counter[str]] = {}
    for row in rows:
        if row.verdict == "untested":
            continue
        by_section.setdefault(row.requirement.section, Counter())[row.verdict] += 1
    parts = [
        '<h2 id="sections">Requirements by spec section</h2>',
        '<table class="sections"><tr><th>Section</th><th>Requirements checked</th>',
        "<th>pass</th><th>fail</th><th>not reached</th><th>not applicable</th></tr>",
    ]
    for section, counts in by_section.items():
        total = sum(counts.values())
        spans = "".join(
            f'<span class="{kind}" style="width:{100 * counts[kind] / total:.1f}%" '
            f'title="{counts[kind]} {kind}"></span>'
            for kind in _BAR_KINDS
            if counts[kind]
        )
        other = total - sum(counts[k] for k in _BAR_KINDS)
        if other:
            spans += f'<span class="other" style="width:{100 * other / total:.1f}%"></span>'
        parts.append(
            f'<tr><td>{escape(section)}</td><td><div class="bar">{spans}</div></td>'
            f"<td>{counts['pass']}</td><td>{counts['fail']}</td>"
            f"<td>{counts['not_reached']}</td><td>{counts['not_applicable']}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _trace(r: CaseResult) -> str:
    if not r.trace:
        return ""
    return (
        f"<details><summary>wire trace ({len(r.trace)} lines)</summary>"
        f"<pre>{escape(chr(10).join(r.trace))}</pre></details>"
    )


def _failure(r: CaseResult, spec: SpecIndex) -> list[str]:
    e = escape
    parts = [
        f'<div class="failure" id="fail-{e(r.case_id)}"><h3>{e(r.case_id)} '
        f"({e(r.status.value)})</h3>",
        "<table><tr><th>Requirement</th><th>Verdict</th><th>Decided by</th><th>Text</th></tr>",
    ]
    for o in r.outcomes:
        req = spec.get(o.requirement)
        by = _decided_by(o)
        detail = f"<br><pre>{e(o.message)}</pre>" if o.message and o.verdict.value == "fail" else ""
        parts.append(
            f'<tr class="{e(o.verdict.value)}"><td>{e(o.requirement)}</td>'
            f"<td>{e(o.verdict.value)}</td><td>{e(by)}{detail}</td>"
            f'<td class="req">{e(req.text if req else "")}</td></tr>'
        )
    parts.append("</table>")
    if r.message:
        parts.append(f"<pre>{e(r.message)}</pre>")
    parts.append(f'<p>Replay: <code class="replay">{e(r.replay)}</code></p>')
    parts.append(_trace(r))
    parts.append("</div>")
    return parts


def html_report(result: SuiteResult, spec: SpecIndex) -> str:
    """Return the report as one HTML page."""
    e = escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>agentworker conformance: {e(result.suite)} suite</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>agentworker conformance: {e(result.suite)} suite</h1>",
        "<p>",
        f"Harness {e(result.harness_version)}, spec {e(result.spec_version)}<br>",
        f"Subject: {e(result.subject)}<br>",
        f"<strong>{e(result.summary_line())}</strong>",
    ]
    if result.no_result:
        parts.append(f"<br><strong>NO RESULT: {e(result.no_result)}</strong>")
    parts.append("</p>")
    rows = requirement_matrix(result, spec)
    verdicts = Counter(row.verdict for row in rows if row.requirement.level == "MUST")
    glance = ", ".join(f"{count} {verdict}" for verdict, count in sorted(verdicts.items()))
    parts.append(f'<p id="musts"><strong>MUST requirements:</strong> {e(glance)}</p>')
    parts += _section_summary(rows)
    if result.problems:
        parts.append("<h2>Problems</h2><ul>")
        parts += [f"<li>{e(p)}</li>" for p in result.problems]
        parts.append("</ul>")
    failures = [r for r in result.results if r.status in (Status.FAIL, Status.XPASS, Status.XFAIL)]
    failures.sort(key=lambda r: not r.counts_as_failure)  # failures, then expected ones
    parts.append(f'<h2 id="failures">Failures ({len(failures)})</h2>')
    for r in failures:
        parts += _failure(r, spec)
    parts.append("<h2>Cases</h2><table><tr><th>Case</th><th>Status</th><th>Level</th>")
    parts.append("<th>Requirement verdicts (deciding step)</th><th>Time (s)</th></tr>")
    for r in sorted(result.results, key=lambda r: not r.counts_as_failure):
        status = r.status.value + (f" ({r.skip_reason})" if r.skip_reason else "")
        verdict_lines = "<br>".join(
            f'<span class="{e(o.verdict.value)}" title="{e(_text(spec, o.requirement))}">'
            f"{e(o.requirement)}: {e(o.verdict.value)}</span> "
            f"<small>({e(_decided_by(o))})</small>"
            for o in r.outcomes
        )
        parts.append(
            f'<tr class="{e(r.status.value.lower())}"><td>{e(r.case_id)}</td>'
            f"<td>{e(status)}</td><td>{e(r.level.value)}</td>"
            f"<td>{verdict_lines}</td><td>{r.duration_s:.2f}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Requirement matrix</h2><table>")
    parts.append(
        "<tr><th>Requirement</th><th>Level</th><th>Verdict</th><th>Text</th>"
        "<th>Decided in (case: step)</th></tr>"
    )
    for row in sorted(rows, key=lambda r: r.verdict != "fail"):
        decided = "<br>".join(
            f"{e(d.case.case_id)}: {e(_decided_by(d.outcome))} ({e(d.outcome.verdict.value)})"
            for d in row.decisions
        )
        verdict = row.verdict + (" (expected)" if row.expected_failure else "")
        parts.append(
            f'<tr class="{e(row.verdict)}"><td>{e(row.requirement.id)}</td>'
            f"<td>{e(row.requirement.level)}</td><td>{e(verdict)}</td>"
            f'<td class="req">{e(row.requirement.text)}</td><td>{decided}</td></tr>'
        )
    parts.append("</table>")
    untested = [
        r.requirement for r in rows if r.verdict == "untested" and r.requirement.level == "MUST"
    ]
    reasons = NOT_COVERED.get(result.suite, {})
    parts.append(f"<h2>Untested MUST requirements ({len(untested)})</h2><ul>")
    parts += [
        f"<li>{e(req.id)} ({e(req.section)}): {e(req.text)}"
        f"<br><em>Why untested: {e(reasons.get(req.id, 'no case yet'))}</em></li>"
        for req in untested
    ]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


def _decided_by(o: RequirementOutcome) -> str:
    if o.step is not None:
        return f"step: {o.step}"
    if o.by_case:
        return "decided by case (no step of its own)"
    return "no step got to it"


def _text(spec: SpecIndex, requirement: str) -> str:
    req = spec.get(requirement)
    return req.text if req is not None else ""
