"""Hosts under test configured for one security mechanism (spec 16.3): the commands given for
each mechanism, the files the harness makes for them, and the process of one such host.

Giving a command claims the mechanism: its cases start that command with the placeholders
substituted, run against it, and stop it."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from agentworker.v1 import agentworker_pb2 as pb
from conformance._certs import CertificateError, Certificates, make_certificates
from conformance._subject import SpawnedSubject, SubjectError

__all__ = ["OPTION_NAMES", "SecureHost", "TokenEntry", "command_line", "secure_commands"]

# Arguments that need no quoting in a replayed command line (placeholders included).
_PLAIN = re.compile(r"[\w@%+=:,./{}-]+")

# The command-line option that gives each mechanism's command (for messages and replays).
OPTION_NAMES: dict[int, str] = {
    pb.CAPABILITY_TLS: "--tls-command",
    pb.CAPABILITY_MUTUAL_TLS: "--mtls-command",
    pb.CAPABILITY_BEARER_TOKEN: "--token-command",
}


def secure_commands(
    tls: str | None = None, mutual_tls: str | None = None, bearer_token: str | None = None
) -> dict[int, list[str]]:
    """Split each given command line (shell rules) and key it by its capability."""
    given = {
        pb.CAPABILITY_TLS: tls,
        pb.CAPABILITY_MUTUAL_TLS: mutual_tls,
        pb.CAPABILITY_BEARER_TOKEN: bearer_token,
    }
    commands: dict[int, list[str]] = {}
    for capability, line in given.items():
        if line is None:
            continue
        argv = shlex.split(line)
        if not argv:
            raise ValueError(f"{OPTION_NAMES[capability]} is empty")
        commands[capability] = argv
    return commands


def command_line(argv: Sequence[str]) -> str:
    """Join ``argv`` into one shell-quoted string, leaving placeholders readable."""
    return " ".join(arg if _PLAIN.fullmatch(arg) else shlex.quote(arg) for arg in argv)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One entry of the token file: a token, the client-id it is bound to and, optionally,
    the only agent types that client may register."""

    token: str
    client_id: str
    agent_types: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, object]:
        """Return the entry as the token file holds it."""
        entry: dict[str, object] = {"token": self.token, "client_id": self.client_id}
        if self.agent_types is not None:
            entry["agent_types"] = list(self.agent_types)
        return entry


class SecureHost:
    """One host under test started with ``command`` for ``capability``: TLS (served with the
    harness's host certificate), mutual TLS (also requiring client certificates signed by the
    harness CA) or bearer tokens (plaintext on loopback, tokens from the harness's file)."""

    def __init__(
        self,
        command: list[str],
        capability: int,
        *,
        scale: float,
        tokens: Sequence[TokenEntry] = (),
    ) -> None:
        self.command = command
        self.capability = capability
        self.scale = scale
        self.tokens = tuple(tokens)
        self.certs: Certificates | None = None
        self.subject: SpawnedSubject | None = None

    @property
    def address(self) -> str:
        """Return HOST:PORT of the running host."""
        assert self.subject is not None, "the host is not started"
        return self.subject.address

    @property
    def uses_tls(self) -> bool:
        """Return whether the harness connects to this host with TLS."""
        return self.capability in (pb.CAPABILITY_TLS, pb.CAPABILITY_MUTUAL_TLS)

    def credentials(self, client: str | None = "harness") -> grpc.ChannelCredentials | None:
        """Return channel credentials trusting the harness CA, with the harness's client
        certificate (``client`` "harness"), one another CA signed ("rogue") or none (None);
        None for a plaintext host."""
        if not self.uses_tls:
            return None
        assert self.certs is not None
        pair: tuple[Path, Path] | None = None
        if client == "harness":
            pair = (self.certs.client_key, self.certs.client_cert)
        elif client == "rogue":
            pair = (self.certs.rogue_client_key, self.certs.rogue_client_cert)
        return grpc.ssl_channel_credentials(
            root_certificates=self.certs.ca.read_bytes(),
            private_key=pair[0].read_bytes() if pair else None,
            certificate_chain=pair[1].read_bytes() if pair else None,
        )

    def placeholders(self) -> dict[str, str]:
        """Return the values of `{tls_cert}`, `{tls_key}`, `{client_ca}` and `{tokens}`."""
        assert self.certs is not None
        return {
            "tls_cert": str(self.certs.server_cert),
            "tls_key": str(self.certs.server_key),
            "client_ca": str(self.certs.ca),
            "tokens": str(self.certs.directory / "tokens.json"),
        }

    def _make_files(self) -> None:
        try:
            self.certs = make_certificates()
        except CertificateError as exc:
            raise SubjectError(f"cannot make test certificates: {exc}") from exc
        Path(self.placeholders()["tokens"]).write_text(
            json.dumps([entry.to_json() for entry in self.tokens], indent=2), encoding="utf-8"
        )

    async def start(self) -> None:
        """Make the files and start the host; raise SubjectError when it does not serve."""
        # Key generation runs in a thread so that the event loop keeps serving other streams.
        await asyncio.to_thread(self._make_files)
        self.subject = SpawnedSubject(
            self.command,
            scale=self.scale,
            placeholders=self.placeholders(),
            credentials=self.credentials(),
        )
        await self.subject.start()

    def output(self) -> str:
        """Return the last lines the host wrote."""
        return self.subject.stderr_tail() if self.subject is not None else ""

    async def stop(self) -> None:
        """Stop the host and delete the files."""
        try:
            if self.subject is not None:
                await self.subject.stop()
        finally:
            if self.certs is not None:
                self.certs.cleanup()
