"""Barbican's secrets API: the one call key cleanup needs."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

import httpx

from glimpse.config.settings import BarbicanOptions
from glimpse.net.deadline import DeadlineExceeded, within


class BarbicanError(Exception):
    """Barbican could not be reached or did not confirm; the message holds no secret."""


class BarbicanClient:
    def __init__(
        self, options: BarbicanOptions, http: httpx.AsyncClient, *, deadline: float = 30.0
    ) -> None:
        endpoint = (options.barbican_endpoint or "").rstrip("/")
        self._secrets = f"{endpoint}/{options.barbican_api_version}/secrets"
        self._http = http
        self._deadline = deadline  # seconds for a whole call, not only each socket wait

    async def delete_secret(self, token: str, secret_id: str) -> int:
        """Delete a secret in the token's scope; the status when Barbican confirms it is gone
        (2xx, or 404: already gone), else BarbicanError."""
        url = f"{self._secrets}/{quote(secret_id, safe='')}"
        request = self._http.delete(url, headers={"X-Auth-Token": token})
        try:
            response = await within(self._deadline, "Barbican DELETE", request)
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            raise BarbicanError(f"Barbican unreachable: {type(exc).__name__}") from exc
        if response.is_success or response.status_code == HTTPStatus.NOT_FOUND:
            return response.status_code
        raise BarbicanError(f"Barbican answered {response.status_code}")
