"""Raw TLS connections to a host, below gRPC: which protocol versions it accepts, and whether
it serves HTTP/2 after the handshake (a mutual-TLS host must not, to a client without an
acceptable certificate)."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from conformance._certs import SERVER_NAME

__all__ = ["TlsOutcome", "client_context", "offers_nothing", "tls_connect"]

# The HTTP/2 client preface and an empty SETTINGS frame: a serving host answers with its own
# SETTINGS frame.
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


@dataclass(frozen=True, slots=True)
class TlsOutcome:
    """``version`` is the negotiated protocol (None when the handshake failed), ``served``
    whether the host sent HTTP/2 bytes after it, ``error`` what ended the connection."""

    version: str | None
    served: bool
    error: str


def client_context(
    ca: Path, *, legacy_only: bool = False, cert: tuple[Path, Path] | None = None
) -> ssl.SSLContext:
    """Return a client context trusting ``ca`` and offering `h2`; ``legacy_only`` offers only
    TLS 1.0 and 1.1 (allowed at security level 0 so that OpenSSL sends them at all);
    ``cert`` is a (certificate, key) pair to present."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if cert is not None:
        context.load_cert_chain(certfile=str(cert[0]), keyfile=str(cert[1]))
    if legacy_only:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the versions are the point
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def offers_nothing(outcome: TlsOutcome) -> bool:
    """Return whether the handshake failed on the harness's side before any offer (the local
    OpenSSL cannot speak the versions asked for)."""
    return "NO_PROTOCOLS_AVAILABLE" in outcome.error


async def tls_connect(address: str, context: ssl.SSLContext, within: float) -> TlsOutcome:
    """Connect to ``address`` with ``context`` (verifying the name `localhost`), send the
    HTTP/2 preface and wait up to ``within`` seconds for the host's first bytes."""
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), ssl=context, server_hostname=SERVER_NAME),
            within,
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        return TlsOutcome(None, False, f"{type(exc).__name__}: {exc}")
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if isinstance(ssl_object, ssl.SSLObject) else None
    served, error = False, ""
    try:
        writer.write(_PREFACE)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(9), within)
        served = bool(data)
        error = "" if served else "the host closed the connection"
    except (OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        writer.transport.abort()  # no TLS close exchange: a host may never answer one
    return TlsOutcome(version, served, error)
