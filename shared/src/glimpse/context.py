"""Who is asking: built once per request (or job) and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glimpse.domain.policy import PolicyEngine


def new_request_id() -> str:
    """`req-` and a random UUID's text, as uuid4() writes it: built from the random bytes
    directly, since a UUID object's checks cost more than the rest of the request id."""
    value = bytearray(os.urandom(16))
    value[6] = (value[6] & 0x0F) | 0x40  # version 4
    value[8] = (value[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = value.hex()
    return f"req-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str | None
    user_id: str | None
    roles: frozenset[str] = frozenset()
    is_admin: bool = False
    request_id: str = field(default_factory=new_request_id)
    # The process's policy engine, bound where the request (or job) enters (PolicyEngine.bind).
    policy: PolicyEngine | None = field(default=None, compare=False, repr=False)
    # The token's scope when it is not a project: "all" for a system-scoped token, the domain
    # of a domain-scoped one. Policy rules with scope_types ["project"] refuse both.
    system_scope: str | None = None
    domain_id: str | None = None
    # Filled under auth_strategy=keystone from the validated token(s); empty otherwise.
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    service_user_id: str | None = None
    service_project_id: str | None = None
    service_roles: frozenset[str] = frozenset()
    # The caller's own Keystone token (auth_strategy=keystone, or as the trusted proxy forwards
    # it), kept only so work that must act in the caller's name (deleting an image's key, a key
    # cleanup's trust) can; never logged or shown.
    auth_token: str | None = field(default=None, repr=False, compare=False)
    token_expires_at: datetime | None = None  # aware UTC

    def evolve(self, **changes: Any) -> RequestContext:  # noqa: ANN401 -- any field's value
        """dataclasses.replace(self, **changes) at half its cost: every request builds one
        context from another (PolicyEngine.bind, an authenticator's remembered identity)."""
        values = list(_field_values(self))
        for name, value in changes.items():
            values[_FIELD_INDEX[name]] = value
        return RequestContext(*values)


# Every field is an __init__ argument, in this order: evolve passes them all by position.
_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(RequestContext) if f.init)
if len(_FIELD_NAMES) != len(fields(RequestContext)):
    raise TypeError("RequestContext.evolve needs every field in __init__")
_FIELD_INDEX: dict[str, int] = {name: index for index, name in enumerate(_FIELD_NAMES)}
_field_values = attrgetter(*_FIELD_NAMES)
