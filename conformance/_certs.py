"""Throwaway certificates for the security cases, made with the `openssl` command-line tool:
a CA, a host certificate for `localhost` / 127.0.0.1 and a client certificate signed by it,
and a second, unrelated CA with its own host and client certificates (a host the worker must
not trust, a client a mutual-TLS host must refuse)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertificateError", "Certificates", "make_certificates"]

SERVER_NAME = "localhost"


class CertificateError(Exception):
    """The certificates cannot be made (no `openssl`, or it failed)."""


@dataclass(frozen=True, slots=True)
class Certificates:
    """Paths of the PEM files."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_server_cert: Path
    rogue_server_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path

    def cleanup(self) -> None:
        """Delete the files."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _run(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)
    except FileNotFoundError as exc:
        raise CertificateError("the `openssl` command is not installed") from exc
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip()
        raise CertificateError(f"openssl {args[0]} failed: {message}") from exc


def _key(name: str, cwd: Path) -> None:
    _run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=cwd)


def _ca(name: str, cwd: Path) -> None:
    _key(name, cwd)
    _run(
        "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}", cwd=cwd,
    )  # fmt: skip


def _leaf(name: str, ca: str, extension: str, cwd: Path) -> None:
    _key(name, cwd)
    _run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
         cwd=cwd)  # fmt: skip
    (cwd / f"{name}.ext").write_text(extension + "\n")
    _run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


def make_certificates() -> Certificates:
    """Make every file in a fresh temporary directory."""
    directory = Path(tempfile.mkdtemp(prefix="conformance-certs-"))
    server_ext = f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    try:
        _ca("ca", directory)
        _leaf("server", "ca", server_ext, directory)
        _leaf("client", "ca", "extendedKeyUsage=clientAuth", directory)
        _ca("rogue-ca", directory)
        _leaf("rogue-server", "rogue-ca", server_ext, directory)
        _leaf("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth", directory)
    except CertificateError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Certificates(
        directory=directory,
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        rogue_ca=directory / "rogue-ca.pem",
        rogue_server_cert=directory / "rogue-server.pem",
        rogue_server_key=directory / "rogue-server.key",
        rogue_client_cert=directory / "rogue-client.pem",
        rogue_client_key=directory / "rogue-client.key",
    )
