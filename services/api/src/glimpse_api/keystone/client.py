"""The Keystone v3 token API, spoken asynchronously on one shared httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx

from glimpse.config.auth_options import KeystoneAuthTokenOptions
from glimpse.net.deadline import DeadlineExceeded, within
from glimpse_api.keystone.tokens import MalformedToken, TokenInfo, parse_time, parse_token

log = logging.getLogger(__name__)

# Re-authenticate this long before the service token expires, so no validation races its expiry
# (keystoneauth's default stale duration is the same order).
SERVICE_TOKEN_MARGIN = timedelta(seconds=120)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TokenRejected(Exception):
    """Keystone does not accept the token: unknown, expired or revoked (it answers 404)."""


class KeystoneUnavailable(Exception):
    """Keystone could not be asked, or answered in a way that decides nothing."""


@dataclass(frozen=True, slots=True)
class _ServiceToken:
    value: str
    expires_at: datetime


@dataclass(slots=True)
class KeystoneCalls:
    """How often Keystone was asked (tests and operators read these)."""

    authentications: int = 0
    validations: int = 0


class KeystoneClient:
    def __init__(
        self,
        options: KeystoneAuthTokenOptions,
        http: httpx.AsyncClient,
        clock: Clock = utcnow,
    ) -> None:
        self._options = options
        self._http = http
        self._clock = clock
        self._url = f"{options.identity_url}/auth/tokens"
        self._service: _ServiceToken | None = None
        self._lock = asyncio.Lock()
        self.calls = KeystoneCalls()

    async def validate(self, token: str) -> TokenInfo:
        """The identity `token` proves; TokenRejected when Keystone does not accept it."""
        service_token = await self._service_token()
        response = await self._get(token, service_token)
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            # Our own token was revoked or expired early: authenticate again, once.
            self._drop_service_token(service_token)
            response = await self._get(token, await self._service_token())
        if response.status_code == HTTPStatus.NOT_FOUND:
            raise TokenRejected("Keystone does not know the token")
        if response.status_code != HTTPStatus.OK:
            log.error("Keystone answered %s to a token validation", response.status_code)
            raise KeystoneUnavailable(f"token validation answered {response.status_code}")
        try:
            return parse_token(self._json(response))
        except MalformedToken as exc:
            raise TokenRejected(str(exc)) from exc

    async def _get(self, token: str, service_token: str) -> httpx.Response:
        self.calls.validations += 1
        headers = {"X-Auth-Token": service_token, "X-Subject-Token": token}
        return await self._send("GET", headers=headers, params={"nocatalog": "1"})

    async def _service_token(self) -> str:
        current = self._service
        if current is not None and current.expires_at - self._clock() > SERVICE_TOKEN_MARGIN:
            return current.value
        async with self._lock:  # one authentication however many requests wait for it
            current = self._service
            if current is None or current.expires_at - self._clock() <= SERVICE_TOKEN_MARGIN:
                current = self._service = await self._authenticate()
            return current.value

    def _drop_service_token(self, value: str) -> None:
        if self._service is not None and self._service.value == value:
            self._service = None

    async def _authenticate(self) -> _ServiceToken:
        options = self._options
        body = {
            "auth": {
                "identity": options.password_identity(),
                "scope": {
                    "project": {
                        "name": options.project_name,
                        "domain": {"name": options.project_domain_name},
                    }
                },
            }
        }
        self.calls.authentications += 1
        response = await self._send("POST", json=body, params={"nocatalog": "1"})
        if response.status_code != HTTPStatus.CREATED:
            log.error(
                "Keystone refused the service credentials of %s: %s",
                options.username,
                response.status_code,
            )
            raise KeystoneUnavailable(f"service authentication answered {response.status_code}")
        try:
            value = response.headers["X-Subject-Token"]
            expires_at = parse_time(self._json(response)["token"]["expires_at"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoneUnavailable(f"unexpected authentication answer: {exc!r}") from exc
        return _ServiceToken(value=value, expires_at=expires_at)

    async def _send(self, method: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401 -- httpx kwargs
        """One request, within call_deadline in all (a timeout per socket wait alone would
        let a Keystone that answers a byte at a time hold it forever)."""
        request = self._http.request(method, self._url, **kwargs)
        try:
            return await within(self._options.call_deadline, f"{method} {self._url}", request)
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            log.critical("Unable to reach Keystone at %s: %s", self._url, exc)
            raise KeystoneUnavailable(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:  # noqa: ANN401 -- JSON from the network
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedToken("not JSON") from exc
