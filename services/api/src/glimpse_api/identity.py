"""Who is asking, per `[DEFAULT] auth_strategy`: one authenticator per process.

Both strategies without Keystone trust something outside the request: noauth trusts whoever
can connect, so it serves loopback only (`refuse_unsafe_bind` at start-up, and each request's
local address); trusted-proxy trusts the proxy's headers, so it takes them only from the
proxy's addresses (`[DEFAULT] trusted_proxies`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final, Protocol

from starlette.requests import Request

from glimpse.config import ConfigError, Settings
from glimpse.context import RequestContext
from glimpse.domain.errors import Forbidden, InvalidInput, NotAuthenticated
from glimpse_api.keystone import KeystoneAuthenticator

log = logging.getLogger(__name__)

ADMIN_ROLE = "admin"
# keystonemiddleware's header for a system-scoped token ("all").
SYSTEM_SCOPE_HEADER: Final = "openstack-system-scope"
# The width of the columns ids are stored in (owner, member, user_id): a longer id from a
# proxy would fail the database's check, so it is refused as the caller's error.
MAX_ID_LENGTH: Final = 255
# The headers TrustedProxy reads, by their name as ASGI servers give it (lower case).
_TOKEN_HEADER: Final = "x-auth-token"  # noqa: S105 -- a header name, not a secret
_PROXY_HEADERS: Final = {
    name.encode("latin-1"): name
    for name in (
        "x-identity-status",
        "x-roles",
        "x-project-id",
        "x-tenant-id",
        "x-user-id",
        "x-domain-id",
        "x-user-domain-id",
        "x-project-domain-id",
        SYSTEM_SCOPE_HEADER,
        _TOKEN_HEADER,
    )
}
# Identities a TrustedProxy remembers (callers x the proxies' ways of sending their headers);
# past this many it starts again.
_IDENTITIES_KEPT: Final = 1024


def refuse_unsafe_bind(settings: Settings) -> None:
    """Stop start-up when noauth (every caller is admin) would listen beyond loopback, unless
    `noauth_allow_public_bind` says the operator means it (then warn)."""
    if settings.auth_strategy != "noauth" or settings.binds_loopback:
        return
    if not settings.noauth_allow_public_bind:
        msg = (
            f"auth_strategy=noauth refuses to listen on {settings.bind_host}; bind to "
            "loopback, choose another auth_strategy, or set noauth_allow_public_bind = true"
        )
        raise ConfigError(msg)
    log.warning("auth_strategy=noauth on %s: every caller is admin", settings.bind_host)


@functools.lru_cache(maxsize=1024)  # a request's peer or local address: parsed once per address
def _address(text: str) -> IPv4Address | IPv6Address | None:
    """An address as a socket reports it (an IPv4-mapped IPv6 one as IPv4); None if it is
    not an address (a Unix socket's path, a test client's host name)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Authenticator(Protocol):
    """Turns a request into its caller's context, or raises NotAuthenticated."""

    @property
    def www_authenticate_uri(self) -> str:
        """Where a client refused with 401 gets a token (WWW-Authenticate: Keystone uri=...)."""
        ...

    async def authenticate(self, request: Request, request_id: str) -> RequestContext: ...

    async def aclose(self) -> None: ...


def _proxy_headers(request: Request) -> dict[str, bytes]:
    """The identity headers of the request by lower-case name, each its first value (as
    Headers.get reads it), in one pass over the headers rather than one per name."""
    found: dict[str, bytes] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = _PROXY_HEADERS.get(raw_name)
        if name is not None and name not in found:
            found[name] = raw_value
    return found


def _id(headers: dict[str, str], *names: str) -> str | None:
    """The first non-empty of the headers `names` (X-Project-Id, else X-Tenant-Id); any of
    them longer than an id column holds is refused (400), used or not."""
    values = [headers.get(name.lower(), "") for name in names]
    for name, value in zip(names, values, strict=True):
        if len(value) > MAX_ID_LENGTH:
            raise InvalidInput(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return next((value for value in values if value), None)


def _split_roles(value: str) -> frozenset[str]:
    return frozenset(role.strip().lower() for role in value.split(",") if role.strip())


class NoAuth:
    """Every request acts as the admin of `noauth_project_id` (development only). A request
    that reached a non-loopback local address (uvicorn started by hand on a public host) is
    refused unless `noauth_allow_public_bind` is set."""

    www_authenticate_uri = ""

    def __init__(self, project_id: str, *, allow_public: bool = False) -> None:
        self._project_id = project_id
        self._allow_public = allow_public

    async def authenticate(self, request: Request, request_id: str) -> RequestContext:
        server = request.scope.get("server")
        local = _address(str(server[0])) if server else None
        if local is not None and not local.is_loopback and not self._allow_public:
            log.warning("auth_strategy=noauth: refused a request that arrived on %s", local)
            raise Forbidden(
                "auth_strategy=noauth serves loopback connections only "
                "(noauth_allow_public_bind is not set)"
            )
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
    """Identity headers set by an authenticating proxy (keystonemiddleware's names), taken
    only from a peer in `trusted_proxies`. The user's token that the proxy forwards in
    X-Auth-Token is kept, as Glance keeps it, to act in the user's name (key cleanup)."""

    www_authenticate_uri = ""

    def __init__(self, proxies: Sequence[IPv4Network | IPv6Network]) -> None:
        self._proxies = tuple(proxies)
        # Peers are few (the proxies, and whoever else connects): decided once per address.
        self._trusts = functools.lru_cache(maxsize=1024)(self._trusts_address)
        self._identities: dict[tuple[tuple[str, bytes], ...], RequestContext] = {}

    def _trusts_address(self, host: str) -> bool:
        peer = _address(host)
        return peer is not None and any(peer in network for network in self._proxies)

    def _from_proxy(self, request: Request) -> bool:
        client = request.scope.get("client")
        if not client:
            return False
        trusted: bool = self._trusts(str(client[0]))
        return trusted

    async def authenticate(self, request: Request, request_id: str) -> RequestContext:
        if not self._from_proxy(request):
            client = request.scope.get("client")
            log.warning(
                "trusted-proxy: refused identity headers from %s, not in trusted_proxies",
                client[0] if client else "an unknown peer",
            )
            raise NotAuthenticated("Authentication required")
        headers = _proxy_headers(request)
        # The token is the request's alone: never part of what is remembered.
        token = headers.pop(_TOKEN_HEADER, b"").decode("latin-1").strip() or None
        # The same headers give the same identity: worked out once per caller, not per request.
        key = tuple(headers.items())
        identity = self._identities.get(key)
        if identity is None:
            identity = _identity({name: value.decode("latin-1") for name, value in key})
            if len(self._identities) >= _IDENTITIES_KEPT:
                self._identities.clear()  # many callers: start again rather than grow
            self._identities[key] = identity
        return identity.evolve(request_id=request_id, auth_token=token)

    async def aclose(self) -> None:
        return None


def _identity(headers: dict[str, str]) -> RequestContext:
    """The caller the proxy's headers (but its token) name, without a request id."""
    if headers.get("x-identity-status", "").lower() != "confirmed":
        raise NotAuthenticated("Authentication required")
    roles = _split_roles(headers.get("x-roles", ""))
    return RequestContext(
        project_id=_id(headers, "X-Project-Id", "X-Tenant-Id"),
        user_id=_id(headers, "X-User-Id"),
        roles=roles,
        is_admin=ADMIN_ROLE in roles,
        request_id="",
        system_scope=headers.get(SYSTEM_SCOPE_HEADER) or None,
        domain_id=_id(headers, "X-Domain-Id"),
        user_domain_id=_id(headers, "X-User-Domain-Id"),
        project_domain_id=_id(headers, "X-Project-Domain-Id"),
    )


def build_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_strategy == "keystone":
        return KeystoneAuthenticator.from_settings(settings)
    if settings.auth_strategy == "trusted-proxy":
        return TrustedProxy(settings.trusted_proxies)
    return NoAuth(settings.noauth_project_id, allow_public=settings.noauth_allow_public_bind)
