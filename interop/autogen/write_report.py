"""Writes interop/autogen/REPORT.md from the report.json files of run_conformance.sh.

    .venv/bin/python interop/autogen/write_report.py [--reports reports/conformance]

The report gives, for AutoGen's host and for its worker runtime, the verdict on every
requirement that binds it (pass, fail, not reached, not applicable, untested), grouped by spec
section, with the case and step that decided it; then the cases by outcome. Only the project's
own interpreter is needed; the AutoGen versions are read from interop/autogen/.venv."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parents[1]
OUTPUT: Final = HERE / "REPORT.md"
SPEC: Final = ROOT / "spec" / "protocol.md"
AUTOGEN_PYTHON: Final = HERE / ".venv" / "bin" / "python"
VERDICTS: Final = ("pass", "fail", "not_reached", "not_applicable", "untested")
_LABEL: Final = {
    "pass": "pass",
    "fail": "**fail**",
    "not_reached": "not reached",
    "not_applicable": "not applicable",
    "untested": "untested",
}
_PACKAGES: Final = ("autogen-core", "autogen-ext", "grpcio", "protobuf")
_MESSAGE_LIMIT: Final = 240

Report = dict[str, Any]

_INTRO = """\
# AutoGen 0.7.5 under the agentworker conformance suites

Both suites of `conformance/` run against AutoGen's gRPC runtime as their subject:

- **host suite** (`--legacy`, AutoGen serves only `/agents.AgentRpc/...`) against AutoGen's own
  `GrpcWorkerAgentRuntimeHost`, started unchanged by
  [`host_for_conformance.py`](host_for_conformance.py);
- **worker suite** against a `GrpcWorkerAgentRuntime` running the conformance agent of spec
  section 16 written with AutoGen's API, [`conformance_adapter.py`](conformance_adapter.py). The
  harness plays the host and serves the legacy path AutoGen workers call.

AutoGen is the subject being documented here; its failures are findings, not defects of this
repository. Spec Appendix A explains what AutoGen does differently and why.

This file is generated from the runs' `report.json` by
[`write_report.py`](write_report.py), which [`run_conformance.sh`](run_conformance.sh) calls
after both suites; edit the generator, not this file.

## Reproduce

```bash
make conformance-autogen     # interop/autogen/run_conformance.sh: setup.sh, both suites, this file
```

Reports: `reports/conformance/autogen_worker/` and `reports/conformance/autogen_host/`, each with
`console.txt` (the full console log: every failure with its wire trace and a replay command),
`report.json`, `junit.xml` and `report.html`. The two suites by hand:

```bash
.venv/bin/python -m conformance worker -- \\
    interop/autogen/.venv/bin/python interop/autogen/conformance_adapter.py
.venv/bin/python -m conformance host --legacy -- \\
    interop/autogen/.venv/bin/python interop/autogen/host_for_conformance.py --address '{address}'
```

`tests/interop/test_autogen_conformance.py` runs a representative subset of both suites in the
normal test run and checks the main findings from `report.json`.
"""

_VERDICT_NOTE = """\
A requirement's verdict comes from the steps of the cases that cite it, never from a case's
overall status: **fail** when a step deciding it failed; *pass* when the steps deciding it
passed; *not reached* when every case citing it ended (at an earlier failed step it depends on)
before a step decided it; *not applicable* when the cases citing it were skipped or found it does
not apply (a v1 extension on a legacy run, a capability AutoGen does not announce); *untested*
when no case of the suite cites it (the MUSTs among these are listed with the reason in
`conformance/_coverage_gaps.py`). "Decided by" names the case and step of the verdict: the first
failed step for a failure, else the last step that decided it.
"""

_ADAPTER = """\
What the adapter does within AutoGen's API: agent type `conformance` registered with
`TypeSubscription("conformance.broadcast")`, `TypePrefixSubscription("conformance.prefix.")` and
AutoGen's own `conformance:` prefix; JSON `Ping` dataclass and protobuf
`agentworker.conformance.v1.Ping` handlers answering `Pong`; Ping events answered with a protobuf
`EventReceipt` on `conformance.receipts`; `Command` (protobuf) handled for publish, call, fail,
stall, remember and recall within `deadline_ms`. AutoGen encodes every RPC reply as JSON, so a
Command is answered with a JSON `CommandResult` holding its scalar fields only, and protobuf
events go through a second runtime opened with `payload_serialization_format` protobuf, on a
second channel with its own client-id. `AGENTWORKER_CLIENT_ID` cannot be applied (AutoGen always
makes a fresh UUID); the TLS and token variables are not read.
"""


_CALL_OUTCOME = (
    "the case reads the call's outcome from a protobuf `CallOutcome`, which AutoGen cannot send "
    "(its JSON reply carries scalar fields only), so the behaviour it targets is not observed"
)
# What is known of the cause of a failure in AutoGen, by case (shown when the case fails).
CAUSES: Final = {
    "host/rpc/correlation/colliding-request-ids": (
        "AutoGen's host correlates responses by the caller's request id alone, so colliding "
        "ids from two workers can cross replies (AutoGen issue #7016)"
    ),
    "host/rpc/unknown-target": "AutoGen's host sends no error for an unknown target and has no "
    "deadline, so the caller waits forever",
    "host/rpc/target-disconnects": "AutoGen's host does not fail the calls pending at a worker "
    "that leaves",
    "host/registration/conflict": "AutoGen's host answers `INVALID_ARGUMENT`",
    "host/subscriptions/conflicts": "AutoGen's host answers `INVALID_ARGUMENT`",
    "host/flow/overloaded": "AutoGen's queues are unbounded: its memory grows with every request",
    "host/flow/slow-consumer": "AutoGen's queues are unbounded: it never ends a slow consumer",
    "host/observability/health": "AutoGen's host serves no gRPC health service",
    "host/observability/reflection": "AutoGen's host serves no reflection (a SHOULD)",
    "worker/rpc/ping/protobuf": "AutoGen labels every RPC reply `application/json`",
    "worker/rpc/concurrent-requests": "AutoGen labels every RPC reply `application/json`",
    "worker/rpc/handler-failure": "AutoGen's `RpcResponse` has no error code",
    "worker/rpc/command-deadline": "AutoGen's `RpcResponse` has no error code",
    "worker/rpc/unsupported-payload": "AutoGen's `RpcResponse` has no error code; without the "
    "adapter's `on_unhandled_message` AutoGen would send nothing at all",
    "worker/rpc/unknown-agent-type": "AutoGen raises outside the handler (`Agent with name ... "
    "not found`) and sends no response",
    "worker/call/concurrent-out-of-order": "AutoGen has no per-call timeout on the wire",
    "worker/call/empty-response": _CALL_OUTCOME,
    "worker/call/error-code-surfaced": _CALL_OUTCOME,
    "worker/call/legacy-error": _CALL_OUTCOME,
    "worker/call/no-answer-deadline": _CALL_OUTCOME,
    "worker/call/reply-not-a-pong": _CALL_OUTCOME,
    "worker/call/unknown-response-id": _CALL_OUTCOME,
    "worker/robustness/duplicate-response": _CALL_OUTCOME,
    "worker/robustness/notice-and-future-enum": _CALL_OUTCOME,
    "worker/call/notice-naming-call": _CALL_OUTCOME,
    "worker/events/per-agent-order": "AutoGen's worker runtime does not hand one agent its "
    "messages one at a time: the agent's second event handler started while its first ran",
    "worker/flow/responses-while-busy": _CALL_OUTCOME,
    "host/registration/idempotent": "AutoGen's host refuses a type its caller already serves "
    "with `INVALID_ARGUMENT`",
    "host/subscriptions/add-list-remove": "AutoGen's host refuses an identical subscription with "
    "`INVALID_ARGUMENT` ('Subscription already exists')",
    "host/control/routing": "AutoGen's host forwards `respond_to` as the requester wrote it",
    "host/control/unknown-target": "AutoGen's host drops a control request it cannot route",
    "host/control/without-data-channel": "AutoGen's host drops a control request it cannot route",
    "host/publish/foreign-subscription": "AutoGen's host delivers a match to whoever serves the "
    "agent type, not to the subscription's owner",
    "worker/events/string-like-attributes": "AutoGen reads only `ce_string` attribute values; "
    "a sender type sent as `ce_uri` reads as empty and the event is dropped",
    "worker/handshake/hello": "AutoGen is a legacy worker (spec Appendix A)",
    "worker/handshake/client-id-on-every-call": "the adapter's second runtime for protobuf "
    "events has a client-id of its own; one AutoGen runtime keeps one client-id",
    "worker/lifecycle/sigterm-drains": "AutoGen's `stop()` keeps serving requests that arrive "
    "while it runs",
}


def _cell(text: str | None) -> str:
    """Return ``text`` on one line, shortened, safe inside a Markdown table cell."""
    flat = " ".join((text or "").split())
    if len(flat) > _MESSAGE_LIMIT:
        flat = flat[: _MESSAGE_LIMIT - 3] + "..."
    return flat.replace("|", "\\|")


def _section_titles(spec: Path) -> dict[str, str]:
    """Return the top-level section titles of the spec by number ("4" -> "Transport ...")."""
    titles = {}
    for line in spec.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^## (\d+)\. (.+)$", line)
        if match:
            titles[match.group(1)] = match.group(2)
    return titles


def _top(section: str) -> str:
    return section.split(" ", 1)[0].split(".", 1)[0]


def _versions() -> str:
    """Return the AutoGen virtualenv's package versions, as the report's run line states."""
    script = (
        "import importlib.metadata as m, platform\n"
        f"print(', '.join(f'{{p}} {{m.version(p)}}' for p in {list(_PACKAGES)!r}) "
        "+ ', Python ' + platform.python_version())"
    )
    try:
        done = subprocess.run(
            [str(AUTOGEN_PYTHON), "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "AutoGen virtualenv versions unknown"
    return done.stdout.strip()


def _verdict_line(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[v]} {_LABEL[v].strip('*')}" for v in VERDICTS if counts[v])


def _case_messages(report: Report) -> dict[tuple[str, str], str]:
    """Return the failure message of each (case, requirement) verdict."""
    return {
        (case["id"], item["id"]): item.get("message") or ""
        for case in report["cases"]
        for item in case["requirements"]
        if isinstance(item, dict)
    }


def _decision(entry: dict[str, Any]) -> dict[str, Any] | None:
    """Return the case decision that gives a requirement its verdict."""
    decisions = entry["cases"]
    matching: list[dict[str, Any]] = [
        d for d in decisions if d["verdict"] == entry["verdict"]
    ] or list(decisions)
    if not matching:
        return None
    return matching[0] if entry["verdict"] == "fail" else matching[-1]


def _section_summary(reports: Sequence[tuple[str, Report]], titles: dict[str, str]) -> list[str]:
    """Return a table of verdict counts per top-level spec section, one column group per
    suite."""
    shown = ("pass", "fail", "not_reached", "not_applicable")
    numbers = sorted(
        {_top(e["section"]) for _, r in reports for e in r["requirement_verdicts"].values()},
        key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n),
    )
    header = "| Section | " + " | ".join(
        f"{name}: {_LABEL[v].strip('*')}" for name, _ in reports for v in shown
    )
    lines = [header + " |", "|---|" + "---:|" * (len(shown) * len(reports))]
    for number in numbers:
        cells = []
        for _, report in reports:
            counts = Counter(
                e["verdict"]
                for e in report["requirement_verdicts"].values()
                if _top(e["section"]) == number
            )
            cells += [str(counts[v]) if counts[v] else "" for v in shown]
        title = titles.get(number, number)
        lines.append(f"| {number}. {title} | " + " | ".join(cells) + " |")
    return lines


def _requirement_tables(report: Report) -> list[str]:
    """Return, per spec section, the verdict on each requirement the suite cites, then the
    requirements it does not cite."""
    messages = _case_messages(report)
    by_section: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for req_id, entry in report["requirement_verdicts"].items():
        by_section.setdefault(entry["section"], []).append((req_id, entry))
    lines: list[str] = []
    for section, entries in by_section.items():
        cited = [(r, e) for r, e in entries if e["verdict"] != "untested"]
        uncited = [r for r, e in entries if e["verdict"] == "untested"]
        lines += ["", f"#### {section}", ""]
        if cited:
            lines += [
                "| Requirement | Level | Verdict | Decided by | Finding |",
                "|---|---|---|---|---|",
            ]
            for req_id, entry in cited:
                decision = _decision(entry)
                where = finding = ""
                if decision is not None:
                    step = decision["step"] or "(the case's status)"
                    where = f"`{decision['case']}`: {_cell(step)}"
                    if entry["verdict"] in ("fail", "not_reached", "not_applicable"):
                        finding = _cell(messages.get((decision["case"], req_id)))
                lines.append(
                    f"| {req_id} | {entry['level']} | {_LABEL[entry['verdict']]} | {where} "
                    f"| {finding} |"
                )
        if uncited:
            if cited:
                lines.append("")
            lines.append("Untested (no case of this suite cites it): " + ", ".join(uncited) + ".")
    return lines


def _case_lists(report: Report) -> list[str]:
    """Return the cases by outcome: failed ones with their first failed step."""
    cases = report["cases"]
    passed = [c["id"] for c in cases if c["status"] == "PASS"]
    skipped: dict[str, list[str]] = {}
    for c in cases:
        if c["status"] == "SKIP":
            skipped.setdefault(c.get("skip_reason") or "skipped", []).append(c["id"])
    failed = [c for c in cases if c["status"] not in ("PASS", "SKIP")]
    lines = ["", f"Passed ({len(passed)}): " + ", ".join(f"`{c}`" for c in passed) + "."]
    for reason, ids in skipped.items():
        lines += ["", f"Skipped, {reason} ({len(ids)}): " + ", ".join(f"`{c}`" for c in ids) + "."]
    if failed:
        lines += [
            "",
            f"Failed ({len(failed)}):",
            "",
            "| Case | Failed requirements | First failure | Known cause in AutoGen |",
            "|---|---|---|---|",
        ]
        for case in failed:
            reqs = [
                item["id"]
                for item in case["requirements"]
                if isinstance(item, dict) and item["verdict"] == "fail"
            ]
            first = next((s for s in case.get("steps", []) if s["verdict"] == "fail"), None)
            text = f"{first['name']}: {first['message']}" if first else case.get("message", "")
            cause = CAUSES.get(case["id"], "")
            failed_reqs = ", ".join(reqs) or "none decided (the case ended first)"
            lines.append(f"| `{case['id']}` | {failed_reqs} | {_cell(text)} | {cause} |")
    return lines


def render(host: Report, worker: Report, *, date: str, versions: str) -> str:
    """Return REPORT.md for the host and worker suite reports."""
    titles = _section_titles(SPEC)
    suites = (("host", host), ("worker", worker))
    lines = [_INTRO, "## Run", ""]
    lines.append(
        f"Date {date}. {versions} (interop/autogen/.venv); harness `agentworker conformance "
        f"{host['harness_version']}`, spec {host['spec_version']}."
    )
    lines += [
        "",
        "| Suite | Subject | Cases | Requirement verdicts |",
        "|---|---|---|---|",
    ]
    subjects = {
        "host": ("host (`--legacy`)", "`GrpcWorkerAgentRuntimeHost`"),
        "worker": ("worker", "`GrpcWorkerAgentRuntime` + `conformance_adapter.py`"),
    }
    for name, report in suites:
        counts = Counter(e["verdict"] for e in report["requirement_verdicts"].values())
        label, subject = subjects[name]
        lines.append(
            f"| {label} | {subject} | **{report['summary']['line']}** | {_verdict_line(counts)} |"
        )
    lines += ["", _VERDICT_NOTE, "## Verdicts per spec section", ""]
    lines += _section_summary(suites, titles)
    lines += ["", "## Host suite: AutoGen's `GrpcWorkerAgentRuntimeHost`", ""]
    lines += ["### Requirements"]
    lines += _requirement_tables(host)
    lines += ["", "### Cases"]
    lines += _case_lists(host)
    lines += ["", "## Worker suite: AutoGen's `GrpcWorkerAgentRuntime`", "", _ADAPTER]
    lines += ["### Requirements"]
    lines += _requirement_tables(worker)
    lines += ["", "### Cases"]
    lines += _case_lists(worker)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write REPORT.md from the two runs' reports."""
    parser = argparse.ArgumentParser(prog="python interop/autogen/write_report.py")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports" / "conformance")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    host = json.loads((args.reports / "autogen_host" / "report.json").read_text())
    worker = json.loads((args.reports / "autogen_worker" / "report.json").read_text())
    date = datetime.datetime.now(datetime.UTC).date().isoformat()
    args.output.write_text(render(host, worker, date=date, versions=_versions()))
    print(f"autogen conformance: wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
