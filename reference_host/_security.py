"""Transport security (TLS, mutual TLS) and bearer-token authentication of calls."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

import grpc

from ._config import TlsConfig, TokenPolicy
from ._errors import InvalidArgument, PermissionDenied, Unauthenticated

CLIENT_ID_METADATA_KEY = "client-id"
AUTHORIZATION_METADATA_KEY = "authorization"


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Build gRPC server credentials; a client CA makes client certificates mandatory."""
    return grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


class Authenticator:
    """Checks the identity metadata of every call (AWP-CONN-002, AWP-SEC-005)."""

    __slots__ = ("_policies",)

    def __init__(self, policies: Sequence[TokenPolicy]) -> None:
        self._policies = tuple(policies)

    @property
    def requires_tokens(self) -> bool:
        """Return True when calls must carry a bearer token."""
        return bool(self._policies)

    def authenticate(self, metadata: Mapping[str, str | bytes]) -> tuple[str, TokenPolicy | None]:
        """Return the caller's client-id and token policy, or raise.

        Raises Unauthenticated for a missing or unknown token, PermissionDenied for a token
        bound to another client-id, and InvalidArgument for a missing client-id.
        """
        policy: TokenPolicy | None = None
        if self._policies:
            policy = self._match(metadata.get(AUTHORIZATION_METADATA_KEY))
        client_id = metadata.get(CLIENT_ID_METADATA_KEY)
        if not isinstance(client_id, str) or not client_id:
            raise InvalidArgument("the client-id metadata is required and must not be empty")
        if policy is not None and policy.client_id != client_id:
            raise PermissionDenied(f"the bearer token is not valid for client-id {client_id!r}")
        return client_id, policy

    def _match(self, header: str | bytes | None) -> TokenPolicy:
        if not isinstance(header, str) or not header:
            raise Unauthenticated("a bearer token is required (authorization: Bearer <token>)")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        presented = token.encode()
        found: TokenPolicy | None = None
        for policy in self._policies:
            # Compare every token in constant time so the search leaks nothing.
            if hmac.compare_digest(policy.token.encode(), presented):
                found = policy
        if found is None:
            raise Unauthenticated("the bearer token is not valid")
        return found


def check_agent_type_allowed(policy: TokenPolicy | None, agent_type: str) -> None:
    """Raise PermissionDenied when ``policy`` limits agent types and omits ``agent_type``."""
    if (
        policy is not None
        and policy.agent_types is not None
        and agent_type not in policy.agent_types
    ):
        raise PermissionDenied(
            f"client {policy.client_id!r} may not register agent type {agent_type!r}"
        )
