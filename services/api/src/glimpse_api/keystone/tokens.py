"""What Glimpse keeps of a validated Keystone v3 token, and its parsing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


class MalformedToken(ValueError):
    """Keystone's answer does not describe a token."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The identity a token proves. Roles are lowercased, as Glance's policy compares them."""

    user_id: str
    user_domain_id: str | None
    project_id: str | None
    project_domain_id: str | None
    roles: tuple[str, ...]
    expires_at: datetime
    # A token scoped to the system ("all") or to a domain instead of a project.
    system_scope: str | None = None
    domain_id: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_json(self) -> str:
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> TokenInfo:
        data = json.loads(text)
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        data["roles"] = tuple(data["roles"])
        return cls(**data)


def parse_time(value: str) -> datetime:
    """Keystone's `2026-11-22T03:56:41.000000Z` as an aware datetime."""
    parsed = datetime.fromisoformat(value)  # 3.11 reads the trailing Z
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_token(body: Any) -> TokenInfo:  # noqa: ANN401 -- JSON from the network
    """The `token` object of a GET or POST /v3/auth/tokens answer."""
    try:
        token = body["token"]
        user = token["user"]
        project = token.get("project") or {}
        system = token.get("system") or {}
        return TokenInfo(
            user_id=str(user["id"]),
            user_domain_id=(user.get("domain") or {}).get("id"),
            project_id=project.get("id"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            roles=tuple(sorted({str(role["name"]).lower() for role in token.get("roles", [])})),
            expires_at=parse_time(token["expires_at"]),
            system_scope="all" if system.get("all") else None,
            domain_id=(token.get("domain") or {}).get("id"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedToken(f"unexpected token data: {exc!r}") from exc
