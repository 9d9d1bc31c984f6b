"""Throwaway certificates for the TLS, mutual TLS and token tests (the `cryptography` package,
through the conformance suite's certificate helpers)."""

from __future__ import annotations

from pathlib import Path

from conformance._certs import issue_leaf
from conformance._certs import make_ca as _make_ca

__all__ = ["SERVER_NAME", "make_ca", "make_test_pki"]

# The name the host certificate is issued for; clients verify it with a target-name override.
SERVER_NAME = "host.agentworker.test"


def make_ca(directory: Path, name: str) -> Path:
    """Make a self-signed CA `<name>.pem` / `<name>.key` in `directory`; return the PEM's path."""
    _make_ca(directory, name)
    return directory / f"{name}.pem"


def make_test_pki(directory: Path) -> Path:
    """Make `ca`, `server` (for SERVER_NAME, localhost and 127.0.0.1) and `client` PEM files.

    Each has `<name>.pem` and `<name>.key` in `directory`, which is returned.
    """
    issuer = _make_ca(directory, "ca")
    issue_leaf(
        directory,
        "server",
        issuer,
        common_name=SERVER_NAME,
        dns_names=(SERVER_NAME, "localhost"),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    issue_leaf(directory, "client", issuer, common_name="worker", server=False)
    return directory
