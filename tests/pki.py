"""Throwaway certificates for the TLS, mutual TLS and token tests, made with `openssl`."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["SERVER_NAME", "make_ca", "make_test_pki"]

# The name the host certificate is issued for; clients verify it with a target-name override.
SERVER_NAME = "host.agentworker.test"


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    """Make a self-signed CA `<name>.pem` / `<name>.key` in `directory`; return the PEM's path."""
    _openssl(
        directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return directory / f"{name}.pem"


def _issue(directory: Path, name: str, subject: str, extension: str) -> None:
    _openssl(
        directory, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}",
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extension)
    _openssl(
        directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
    )  # fmt: skip


def make_test_pki(directory: Path) -> Path:
    """Make `ca`, `server` (for SERVER_NAME, localhost and 127.0.0.1) and `client` PEM files.

    Each has `<name>.pem` and `<name>.key` in `directory`, which is returned.
    """
    make_ca(directory, "ca")
    _issue(
        directory,
        "server",
        SERVER_NAME,
        f"subjectAltName=DNS:{SERVER_NAME},DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth\n",
    )
    _issue(directory, "client", "worker", "extendedKeyUsage=clientAuth\n")
    return directory
