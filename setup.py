"""Build hook: the wheel carries the spec's requirement index as conformance package data
(conformance/requirements.json, copied from spec/requirements.json at build time), so an
installed suite knows its spec version and every requirement's text. Everything else is
configured in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SPEC_INDEX = Path(__file__).resolve().parent / "spec" / "requirements.json"


class BuildWithSpecIndex(build_py):
    """Copy spec/requirements.json into the built conformance package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "conformance" / "requirements.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SPEC_INDEX, target)


setup(cmdclass={"build_py": BuildWithSpecIndex})
