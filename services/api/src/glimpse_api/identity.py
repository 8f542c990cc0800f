"""Who is asking, per `[DEFAULT] auth_strategy`."""

from __future__ import annotations

from starlette.requests import Request

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.domain.errors import NotAuthenticated

ADMIN_ROLE = "admin"


def _split_roles(value: str) -> frozenset[str]:
    return frozenset(role.strip().lower() for role in value.split(",") if role.strip())


def context_from_request(settings: Settings, request: Request, request_id: str) -> RequestContext:
    if settings.auth_strategy == "noauth":
        return RequestContext(
            project_id=settings.noauth_project_id,
            user_id="admin",
            roles=frozenset({ADMIN_ROLE, "member", "reader"}),
            is_admin=True,
            request_id=request_id,
        )
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
