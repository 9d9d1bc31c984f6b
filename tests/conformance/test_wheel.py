"""The suite installed from a wheel, outside the repository: it knows its spec version, lists
every requirement with its text, and runs against the reference host with a full matrix.

The wheel is built from this checkout and installed into a fresh venv (no system site
packages, no pip of its own). Its pinned dependencies (grpcio, protobuf, ...) are not
downloaded: the venv reads them from this test environment's site-packages through a .pth
line, which exposes those directories only (the editable install of this checkout is a .pth
hook there, and hooks in a directory added that way are not run), so `conformance` and the
generated stubs can only come from the wheel."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC_INDEX = json.loads((ROOT / "spec" / "requirements.json").read_text(encoding="utf-8"))


def _run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel, install it into a fresh venv; return the venv's python."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    wheel_args = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)]
    built = _run([sys.executable, "-m", "pip", *wheel_args, str(ROOT)], tmp)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("agentworker-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    done = _run([*pip, "--no-deps", "--no-index", str(wheel)], tmp)
    assert done.returncode == 0, done.stderr
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.slow
def test_installed_suite_knows_its_spec(installed: Path, tmp_path: Path) -> None:
    where = _run(
        [str(installed), "-c", "import conformance; print(conformance.__file__)"], tmp_path
    )
    assert where.returncode == 0, where.stderr
    assert str(installed.parents[1]) in where.stdout  # from the venv, not this checkout
    packaged = Path(where.stdout.strip()).parent / "requirements.json"
    # In sync: the wheel carries exactly the spec's requirement index.
    assert json.loads(packaged.read_text(encoding="utf-8")) == SPEC_INDEX

    explained = _run([str(installed), "-m", "conformance", "explain"], tmp_path)
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    total = len(SPEC_INDEX["requirements"])
    assert lines[0] == f"spec {SPEC_INDEX['version']}: {total} requirements"
    first = SPEC_INDEX["requirements"][0]
    assert first["text"] in explained.stdout


@pytest.mark.slow
def test_installed_suite_runs_against_the_reference_host(installed: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    suite = ["host", "--case", "host/subscriptions/*", "--report-dir", str(reports)]
    host = [str(installed), "-m", "reference_host", "--address", "{address}"]
    run = _run([str(installed), "-m", "conformance", *suite, "--", *host], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"spec {SPEC_INDEX['version']}" in run.stdout.splitlines()[0]
    report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
    assert report["spec_version"] == SPEC_INDEX["version"]
    host_reqs = [r for r in SPEC_INDEX["requirements"] if r["subject"] in ("host", "peer")]
    assert len(report["requirements"]) == len(host_reqs)
    verdicts = report["requirement_verdicts"]
    assert verdicts["AWP-SUB-004"]["verdict"] == "pass"
    assert all(v["text"] for v in verdicts.values())
    assert "AWP-SUB-004" in (reports / "report.html").read_text(encoding="utf-8")
