"""Writes every report file of a run into one directory."""

from __future__ import annotations

from pathlib import Path

from conformance._report_html import html_report
from conformance._report_json import json_report
from conformance._report_junit import junit_report
from conformance._results import SuiteResult
from conformance._spec import load_spec_index

__all__ = ["write_reports"]


def write_reports(result: SuiteResult, directory: Path) -> list[Path]:
    """Write report.json, junit.xml and report.html into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = load_spec_index()
    files = {
        "report.json": json_report(result, spec),
        "junit.xml": junit_report(result),
        "report.html": html_report(result, spec),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
