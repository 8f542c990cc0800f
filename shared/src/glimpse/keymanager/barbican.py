"""Barbican's secrets API: deleting a key (key cleanup) and reading a certificate (image
signature verification)."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote

import httpx

from glimpse.config.auth_options import BarbicanOptions
from glimpse.net.deadline import DeadlineExceeded, within

# A certificate is a few KiB; a payload larger than this is refused, not read into memory.
MAX_CERTIFICATE_BYTES = 64 * 1024


class BarbicanError(Exception):
    """Barbican could not be reached or did not confirm; the message holds no secret."""


class SecretNotFound(BarbicanError):
    """Barbican answered 404: no such secret (or none the token may see)."""


@dataclass(frozen=True, slots=True)
class StoredSecret:
    secret_type: str
    payload: bytes


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

    async def get_secret(self, token: str, secret_id: str) -> StoredSecret:
        """A secret's type and raw payload, read in the token's scope (as castellan's `get`
        does with the user's context). SecretNotFound on 404, else BarbicanError."""
        url = f"{self._secrets}/{quote(secret_id, safe='')}"
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        try:
            meta = await within(
                self._deadline, "Barbican GET", self._http.get(url, headers=headers)
            )
            self._check(meta)
            secret_type = meta.json().get("secret_type") if meta.content else None
            payload = await within(
                self._deadline,
                "Barbican GET payload",
                self._read_payload(f"{url}/payload", token),
            )
        except (httpx.HTTPError, DeadlineExceeded, ValueError, AttributeError) as exc:
            raise BarbicanError(
                f"Barbican unreachable or unreadable: {type(exc).__name__}"
            ) from exc
        return StoredSecret(str(secret_type or ""), payload)

    async def _read_payload(self, url: str, token: str) -> bytes:
        headers = {"X-Auth-Token": token, "Accept": "application/octet-stream"}
        async with self._http.stream("GET", url, headers=headers) as response:
            self._check(response)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_CERTIFICATE_BYTES:
                    raise BarbicanError(f"secret payload over {MAX_CERTIFICATE_BYTES} bytes")
            return bytes(body)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code == HTTPStatus.NOT_FOUND:
            raise SecretNotFound("Barbican answered 404")
        if not response.is_success:
            raise BarbicanError(f"Barbican answered {response.status_code}")
