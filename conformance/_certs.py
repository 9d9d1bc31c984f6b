"""Throwaway certificates for the security cases, made with the `cryptography` package: a CA,
a host certificate for `localhost` / 127.0.0.1 and a client certificate signed by it, and a
second, unrelated CA with its own host and client certificates (a host the worker must not
trust, a client a mutual-TLS host must refuse)."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateError",
    "Certificates",
    "Issuer",
    "issue_leaf",
    "make_ca",
    "make_certificates",
]

SERVER_NAME = "localhost"
VALIDITY = datetime.timedelta(days=2)


class CertificateError(Exception):
    """The certificates cannot be made (the files cannot be written)."""


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA that signs leaf certificates."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def make_ca(directory: Path, name: str) -> Issuer:
    """Writes a self-signed CA `<name>.pem` / `<name>.key` into `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory, name, cert, key)
    return Issuer(subject, key)


def issue_leaf(
    directory: Path,
    name: str,
    issuer: Issuer,
    *,
    common_name: str | None = None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool,
) -> None:
    """Writes `<name>.pem` / `<name>.key`, signed by `issuer`, for a server or a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or name)])
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, issuer.name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(dns) for dns in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write(directory, name, builder.sign(issuer.key, hashes.SHA256()), key)


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


def _family(directory: Path, prefix: str) -> None:
    issuer = make_ca(directory, f"{prefix}ca")
    issue_leaf(
        directory,
        f"{prefix}server",
        issuer,
        dns_names=(SERVER_NAME,),
        ip_addresses=("127.0.0.1",),
        server=True,
    )
    issue_leaf(directory, f"{prefix}client", issuer, server=False)


def make_certificates() -> Certificates:
    """Make every file in a fresh temporary directory."""
    directory = Path(tempfile.mkdtemp(prefix="conformance-certs-"))
    try:
        _family(directory, "")
        _family(directory, "rogue-")
    except OSError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise CertificateError(f"cannot write the certificates: {exc}") from exc
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
