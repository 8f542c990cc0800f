"""TLS failures as the httpx errors every caller already handles.

httpx maps a failed TLS handshake to ConnectError, but an alert that arrives after it is passed
on as a bare ssl.SSLError: with TLS 1.3 a server that demands a client certificate finishes the
handshake first and sends its refusal with the first answer, so whether a call fails with an
httpx error or with ssl.SSLError depends on timing. Callers that turn httpx errors into "the
service is unavailable" would otherwise answer 500 for the same refusal now and then."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx


class TLSErrorTransport(httpx.AsyncBaseTransport):
    """Wraps a transport so an ssl.SSLError raised while a call is sent or its answer read is
    raised as httpx.ConnectError (before the answer's headers) or httpx.ReadError (in its body)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS: {exc}", request=request) from exc
        if not isinstance(response.stream, httpx.AsyncByteStream):
            return response  # not from a network transport: nothing of TLS to read
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TLSCheckedStream(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TLSCheckedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except ssl.SSLError as exc:
            raise httpx.ReadError(f"TLS: {exc}", request=self._request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
