"""From a request's X-Auth-Token (and X-Service-Token) to a RequestContext, via Keystone."""

from __future__ import annotations

import asyncio
import logging

import httpx
from redis.asyncio import Redis
from starlette.requests import Request

from glimpse.config import Settings
from glimpse.config.auth_options import KeystoneAuthTokenOptions
from glimpse.context import RequestContext
from glimpse.domain.errors import IdentityUnavailable, NotAuthenticated
from glimpse.net.deadline import acquire_within
from glimpse.net.session import session_client
from glimpse_api.keystone.cache import RefusedTokens, TokenCache, token_key
from glimpse_api.keystone.client import (
    Clock,
    KeystoneClient,
    KeystoneUnavailable,
    TokenRejected,
    utcnow,
)
from glimpse_api.keystone.tokens import TokenInfo

log = logging.getLogger(__name__)

ADMIN_ROLE = "admin"
REJECTED = "The request you have made requires authentication."
UNAVAILABLE = "The Keystone service is temporarily unavailable."


def _http_client(options: KeystoneAuthTokenOptions) -> httpx.AsyncClient:
    # keystoneauth's timeout, when set, bounds each socket wait too (and call_deadline, the call).
    return session_client(options, timeout=options.timeout or options.http_connect_timeout)


class KeystoneAuthenticator:
    def __init__(
        self,
        options: KeystoneAuthTokenOptions,
        http: httpx.AsyncClient,
        redis: Redis | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._options = options
        self._http = http
        self._clock = clock
        self._service_roles = frozenset(role.lower() for role in options.service_token_roles)
        self._warned_service_roles = False
        self.client = KeystoneClient(options, http, clock)
        # Validations in flight by token hash: concurrent requests with a token not yet cached
        # (a client's parallel uploads) wait for one answer instead of asking Keystone each.
        self._pending: dict[str, asyncio.Future[TokenInfo]] = {}
        self.cache = TokenCache(
            options.token_cache_time, options.token_cache_max_entries, redis, clock
        )
        self.refused = RefusedTokens(
            options.invalid_token_cache_time, options.token_cache_max_entries
        )
        # Validations in flight at Keystone, at most: a flood of tokens waits its turn (each
        # at most http_request_timeout) instead of taking every connection.
        self._slots = asyncio.Semaphore(options.validation_concurrency)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeystoneAuthenticator:
        options = settings.keystone_authtoken
        if options.memcached_servers:
            log.warning(
                "[keystone_authtoken] memcached_servers is not used; "
                "set cache_redis_url to share token validations between API nodes"
            )
        redis = Redis.from_url(options.cache_redis_url) if options.cache_redis_url else None
        return cls(options, _http_client(options), redis)

    @property
    def www_authenticate_uri(self) -> str:
        return self._options.challenge_uri

    async def authenticate(self, request: Request, request_id: str) -> RequestContext:
        user_token = request.headers.get("x-auth-token", "").strip()
        if not user_token:
            raise NotAuthenticated(REJECTED)
        service_token = request.headers.get("x-service-token", "").strip()
        service = await self._service_identity(service_token) if service_token else None
        user = await self._identity(user_token)
        roles = frozenset(user.roles)
        return RequestContext(
            project_id=user.project_id,
            user_id=user.user_id,
            roles=roles,
            is_admin=ADMIN_ROLE in roles,
            request_id=request_id,
            system_scope=user.system_scope,
            domain_id=user.domain_id,
            user_domain_id=user.user_domain_id,
            project_domain_id=user.project_domain_id,
            service_user_id=service.user_id if service else None,
            service_project_id=service.project_id if service else None,
            service_roles=frozenset(service.roles) if service else frozenset(),
            auth_token=user_token,
            token_expires_at=user.expires_at,
        )

    async def _identity(self, token: str) -> TokenInfo:
        info = await self.cache.get(token)
        if info is None:
            if self.refused.holds(token):
                raise NotAuthenticated(REJECTED)
            info = await self._validated(token)
        # Checked on every use, cached or not: an entry may outlive its token by clock skew
        # between nodes sharing Redis, and Keystone may hand out a token in its last second.
        if info.expired(self._clock()):
            log.info("token of user %s expired at %s", info.user_id, info.expires_at)
            raise NotAuthenticated(REJECTED)
        return info

    async def _validated(self, token: str) -> TokenInfo:
        key = token_key(token)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_keystone(token))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        # shield: one waiter's cancellation (a client gone) must not cancel the others' answer.
        return await asyncio.shield(pending)

    def _forget(self, key: str, done: asyncio.Future[TokenInfo]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter went away

    async def _ask_keystone(self, token: str) -> TokenInfo:
        await self._take_slot()
        try:
            info = await self.client.validate(token)
        except TokenRejected:
            log.info("Keystone rejected a token")
            self.refused.add(token)
            raise NotAuthenticated(REJECTED) from None
        except KeystoneUnavailable:
            raise IdentityUnavailable(UNAVAILABLE) from None
        finally:
            self._slots.release()
        await self.cache.put(token, info)  # put() keeps nothing past the token's expiry
        return info

    async def _take_slot(self) -> None:
        """One of the validation_concurrency slots, waited for at most call_deadline
        (IdentityUnavailable then: Keystone is too slow for the load)."""
        seconds = self._options.call_deadline
        if not await acquire_within(self._slots, seconds):
            log.warning("no token validation slot within %ss", seconds)
            raise IdentityUnavailable(UNAVAILABLE)

    async def _service_identity(self, token: str) -> TokenInfo:
        info = await self._identity(token)
        if self._service_roles.isdisjoint(info.roles):
            if self._options.service_token_roles_required:
                log.info(
                    "service token of user %s has none of %s", info.user_id, self._service_roles
                )
                raise NotAuthenticated(REJECTED)
            if not self._warned_service_roles:
                self._warned_service_roles = True
                log.warning(
                    "A valid token was sent as a service token without a role from "
                    "service_token_roles; accepted because service_token_roles_required = false"
                )
        return info

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.cache.aclose()
