"""The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`,
installed by scripts/setup)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from html import unescape
from pathlib import Path

import pytest

from conformance._reports import write_reports
from tests.conformance.test_reports import _result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "reports" / "report-in-browser.png"  # reports/ is not committed


def _chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None, "scripts/setup installs Debian's chromium package"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True,
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    write_reports(_result(), directory)
    return directory / "report.html"


def _visible_text(dom: str) -> str:
    body = re.sub(r"(?s)<(style|title)[^>]*>.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def test_a_person_sees_the_verdict_failures_and_the_matrix(report: Path) -> None:
    dom = _chromium("--dump-dom", report.as_uri()).stdout.decode()
    text = _visible_text(dom)
    assert "1 passed, 1 failed, 1 skipped" in text
    assert "MUST requirements:" in text
    # It opens on the summary per spec section, then the failures, then the cases.
    assert text.index("Requirements by spec section") < text.index("Failures (1)")
    assert text.index("Failures (1)") < text.index("Cases")
    assert 'class="bar"' in dom
    # The failed case shows each requirement's verdict, the step that decided it and the
    # requirement's text; its message, its folded wire trace and how to replay it.
    assert re.search(r"AWP-RPC-004 fail step: one response", text)
    assert "AWP-RPC-010 not_reached" in text
    assert "got <script>alert(1)</script> & more" in text
    assert "<details><summary>wire trace (1 lines)</summary>" in dom
    assert "w -> frame" in text
    assert "Replay: python -m conformance host --address x --case host/b" in text
    # Hostile text from a subject stays text: no element was created from it.
    assert "<script>alert" not in dom
    # The matrix names requirements with their verdicts, texts and deciding steps, and
    # untested MUSTs say why.
    assert re.search(r"AWP-RPC-004 MUST fail .+ host/b: step: one response \(fail\)", text)
    assert "Untested MUST requirements" in text
    assert "Why untested:" in text


def test_the_page_renders_to_a_full_screenshot(report: Path) -> None:
    shot = SCREENSHOT
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    _chromium(f"--screenshot={shot}", "--window-size=1200,900", report.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 900)
    assert len(data) > 20_000, "a page with tables and text, not a blank image"
