"""A server's TLS refusal reaches callers as an httpx error, whenever it arrives: with TLS 1.3 a
server that demands a client certificate refuses one only after the handshake, so the alert
may come while the request is written, with the answer's headers, or not until its body."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from glimpse.config.session import SessionOptions
from glimpse.net.session import session_client
from glimpse.net.tls_errors import TLSErrorTransport
from tls_standin import make_pki, tls_standin

CALLS = 30  # the alert's timing varies from call to call; each one must fail the same way


async def test_a_refused_client_certificate_is_an_httpx_error_on_every_call(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path)
    failures: list[type[BaseException]] = []
    with tls_standin(pki, client_cert_required=True) as server:
        for _ in range(CALLS):
            # A client per call: each meets the refusal on a fresh connection.
            async with session_client(SessionOptions(cafile=pki.ca), timeout=10) as client:
                with pytest.raises(httpx.TransportError) as raised:
                    await client.get(f"{server.base}/v3/auth/tokens")
            failures.append(type(raised.value))
        assert server.requests == []  # none got past the refusal
    assert set(failures) <= {httpx.ConnectError, httpx.ReadError, httpx.WriteError}


class _AlertAfter(httpx.AsyncBaseTransport):
    """Raises the alert a TLS 1.3 server sends with a refusal, before the headers or in the
    body of an answer."""

    def __init__(self, *, in_body: bool) -> None:
        self.in_body = in_body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.scheme == "https"
        if not self.in_body:
            raise ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
        return httpx.Response(200, stream=_FailingBody())


class _FailingBody(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first"
        raise ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record")


async def test_an_alert_before_the_headers_is_a_connect_error() -> None:
    async with httpx.AsyncClient(transport=TLSErrorTransport(_AlertAfter(in_body=False))) as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_REQUIRED") as raised:
            await c.get("https://keystone.test/v3")
    assert isinstance(raised.value.__cause__, ssl.SSLError)


async def _read_into(response: httpx.Response, received: bytearray) -> None:
    async for chunk in response.aiter_raw():
        received += chunk


async def test_an_alert_in_the_body_is_a_read_error_after_what_came_before() -> None:
    received = bytearray()
    transport = TLSErrorTransport(_AlertAfter(in_body=True))
    async with (
        httpx.AsyncClient(transport=transport) as c,
        c.stream("GET", "https://store.test/image") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError, match="BAD_RECORD"):
            await _read_into(response, received)
    assert bytes(received) == b"first"
