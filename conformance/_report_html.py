"""The HTML report: a self-contained page with the summary, the cases and the requirement
matrix. Every value is escaped."""

from __future__ import annotations

from collections import Counter
from html import escape

from conformance._coverage_gaps import NOT_COVERED
from conformance._matrix import requirement_matrix
from conformance._results import SuiteResult
from conformance._spec import SpecIndex

__all__ = ["html_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; text-align: left; }
.pass { background: #dfd; } .fail, .xpass { background: #fdd; } .xfail { background: #ffd; }
.skip, .skipped, .untested { background: #eee; }
pre { white-space: pre-wrap; margin: 0; font-size: 85%; }
"""


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
    if result.problems:
        parts.append("<h2>Problems</h2><ul>")
        parts += [f"<li>{e(p)}</li>" for p in result.problems]
        parts.append("</ul>")
    parts.append("<h2>Cases</h2><table><tr><th>Case</th><th>Status</th><th>Level</th>")
    parts.append("<th>Requirements</th><th>Time (s)</th><th>Details</th></tr>")
    for r in result.results:
        status = r.status.value + (f" ({r.skip_reason})" if r.skip_reason else "")
        details = r.message
        if r.counts_as_failure:
            details = "\n".join([r.message, *r.trace, f"replay: {r.replay}"])
        parts.append(
            f'<tr class="{e(r.status.value.lower())}"><td>{e(r.case_id)}</td>'
            f"<td>{e(status)}</td><td>{e(r.level.value)}</td>"
            f"<td>{e(', '.join(r.requirements))}</td><td>{r.duration_s:.2f}</td>"
            f"<td><pre>{e(details)}</pre></td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Requirement matrix</h2><table>")
    parts.append("<tr><th>Requirement</th><th>Level</th><th>Verdict</th><th>Cases</th></tr>")
    for row in rows:
        cases = ", ".join(f"{c.case_id} ({c.status.value})" for c in row.cases)
        parts.append(
            f'<tr class="{e(row.verdict)}"><td title="{e(row.requirement.text)}">'
            f"{e(row.requirement.id)}</td><td>{e(row.requirement.level)}</td>"
            f"<td>{e(row.verdict)}</td><td>{e(cases)}</td></tr>"
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
