"""Keystone v3 for key cleanups: the service user's tokens, trusts, trust-scoped tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx

from glimpse.config.auth_options import KeystoneAuthTokenOptions
from glimpse.net.deadline import DeadlineExceeded, within

log = logging.getLogger(__name__)


class KeystoneError(Exception):
    """Keystone could not be reached or refused; the message holds no secret."""


@dataclass(frozen=True, slots=True)
class ServiceToken:
    value: str
    user_id: str
    project_id: str | None

    def __repr__(self) -> str:  # the token itself never reaches a log
        return f"ServiceToken(user_id={self.user_id!r}, project_id={self.project_id!r})"


class IdentityClient:
    """Everything asked of Keystone as the `[keystone_authtoken]` service user."""

    def __init__(
        self,
        options: KeystoneAuthTokenOptions,
        url: str,
        http: httpx.AsyncClient,
        *,
        deadline: float = 30.0,
    ) -> None:
        self._options = options
        self._deadline = deadline  # seconds for a whole call, not only each socket wait
        self._url = url.rstrip("/") if url.rstrip("/").endswith("/v3") else f"{url.rstrip('/')}/v3"
        self._http = http
        self._service: ServiceToken | None = None

    @staticmethod
    def configured(options: KeystoneAuthTokenOptions) -> bool:
        return bool(options.auth_url and options.username and options.password)

    async def _issue(self, scope: dict[str, Any], what: str) -> ServiceToken:
        body = {"auth": {"identity": self._options.password_identity(), "scope": scope}}
        response = await self._send("POST", "/auth/tokens", json=body, params={"nocatalog": "1"})
        if response.status_code != HTTPStatus.CREATED:
            raise KeystoneError(f"{what}: Keystone answered {response.status_code}")
        try:
            token = response.json()["token"]
            return ServiceToken(
                value=response.headers["X-Subject-Token"],
                user_id=str(token["user"]["id"]),
                project_id=(token.get("project") or {}).get("id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoneError(f"{what}: unexpected answer ({type(exc).__name__})") from exc

    async def service_token(self) -> ServiceToken:
        """The service user's token scoped to its project (one per client)."""
        if self._service is None:
            scope = {
                "project": {
                    "name": self._options.project_name,
                    "domain": {"name": self._options.project_domain_name},
                }
            }
            self._service = await self._issue(scope, "service authentication")
        return self._service

    async def trust_token(self, trust_id: str) -> ServiceToken:
        """A token of the service user (the trustee) scoped to a trust: with impersonation it
        acts as the trustor in the trust's project."""
        return await self._issue({"OS-TRUST:trust": {"id": trust_id}}, "trust-scoped token")

    async def create_trust(
        self, user_token: str, trustor_id: str, project_id: str, roles: list[str]
    ) -> str:
        """A trust from the token's user to the service user; its id."""
        trustee = await self.service_token()
        body = {
            "trust": {
                "trustor_user_id": trustor_id,
                "trustee_user_id": trustee.user_id,
                "project_id": project_id,
                "impersonation": True,
                "roles": [{"name": role} for role in roles],
            }
        }
        response = await self._send(
            "POST", "/OS-TRUST/trusts", json=body, headers={"X-Auth-Token": user_token}
        )
        if response.status_code != HTTPStatus.CREATED:
            raise KeystoneError(f"trust creation: Keystone answered {response.status_code}")
        try:
            return str(response.json()["trust"]["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoneError(
                f"trust creation: unexpected answer ({type(exc).__name__})"
            ) from exc

    async def delete_trust(self, token: str, trust_id: str) -> bool:
        """True once the trust is gone (404 counts: someone removed it already)."""
        response = await self._send(
            "DELETE", f"/OS-TRUST/trusts/{trust_id}", headers={"X-Auth-Token": token}
        )
        return response.is_success or response.status_code == HTTPStatus.NOT_FOUND

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401 -- httpx kwargs
        request = self._http.request(method, f"{self._url}{path}", **kwargs)
        try:
            return await within(self._deadline, f"Keystone {method}", request)
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            raise KeystoneError(f"Keystone unreachable: {type(exc).__name__}") from exc
