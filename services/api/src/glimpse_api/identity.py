"""Who is asking, per `[DEFAULT] auth_strategy`: one authenticator per process."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.domain.errors import NotAuthenticated
from glimpse_api.keystone import KeystoneAuthenticator

ADMIN_ROLE = "admin"


class Authenticator(Protocol):
    """Turns a request into its caller's context, or raises NotAuthenticated."""

    @property
    def www_authenticate_uri(self) -> str:
        """Where a client refused with 401 gets a token (WWW-Authenticate: Keystone uri=...)."""
        ...

    async def authenticate(self, request: Request, request_id: str) -> RequestContext: ...

    async def aclose(self) -> None: ...


def _split_roles(value: str) -> frozenset[str]:
    return frozenset(role.strip().lower() for role in value.split(",") if role.strip())


class NoAuth:
    """Every request acts as the admin of `noauth_project_id` (development only)."""

    www_authenticate_uri = ""

    def __init__(self, project_id: str) -> None:
        self._project_id = project_id

    async def authenticate(self, request: Request, request_id: str) -> RequestContext:  # noqa: ARG002
        return RequestContext(
            project_id=self._project_id,
            user_id="admin",
            roles=frozenset({ADMIN_ROLE, "member", "reader"}),
            is_admin=True,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        return None


class TrustedProxy:
    """Identity headers set by an authenticating proxy (keystonemiddleware's names)."""

    www_authenticate_uri = ""

    async def authenticate(self, request: Request, request_id: str) -> RequestContext:
        headers = request.headers
        if headers.get("x-identity-status", "").lower() != "confirmed":
            raise NotAuthenticated("Authentication required")
        roles = _split_roles(headers.get("x-roles", ""))
        return RequestContext(
            project_id=headers.get("x-project-id") or headers.get("x-tenant-id"),
            user_id=headers.get("x-user-id"),
            roles=roles,
            is_admin=ADMIN_ROLE in roles,
            request_id=request_id,
        )

    async def aclose(self) -> None:
        return None


def build_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_strategy == "keystone":
        return KeystoneAuthenticator.from_settings(settings)
    if settings.auth_strategy == "trusted-proxy":
        return TrustedProxy()
    return NoAuth(settings.noauth_project_id)
