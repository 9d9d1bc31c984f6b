"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pki import make_test_pki


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA with server and client certificates (see tests/pki.py)."""
    return make_test_pki(tmp_path_factory.mktemp("certs"))
