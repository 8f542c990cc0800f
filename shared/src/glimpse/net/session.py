"""httpx clients that honour keystoneauth's session options (glimpse.config.session) for the
calls Glimpse makes to Keystone and Barbican: TLS (cafile, insecure, certfile, keyfile), the
socket timeout, and what is logged of each call (collect_timing, split_loggers)."""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from glimpse.config.session import SessionOptions
from glimpse.net.tls_errors import TLSErrorTransport

SESSION_LOGGER: Final = "glimpse.session"
TIMINGS_KEPT: Final = 1000
CONTEXTS_KEPT: Final = 16  # distinct TLS settings: Keystone's, Barbican's, a few more
_REQUEST_ID_HEADERS: Final = ("x-openstack-request-id", "x-compute-request-id")


@dataclass(frozen=True, slots=True)
class Timing:
    """One call: its method, URL, status, and seconds until the answer's headers came."""

    method: str
    url: str
    status: int
    seconds: float


class SessionTransport(httpx.AsyncBaseTransport):
    """Wraps a transport to log each call as keystoneauth's Session does (request, answer and
    request id, at DEBUG, to one logger or three with split_loggers) and, with collect_timing,
    to keep and log each call's timing. Only method, URL, status and request id are logged:
    tokens travel in headers and bodies, which never reach a log."""

    def __init__(self, inner: httpx.AsyncBaseTransport, options: SessionOptions) -> None:
        self._inner = inner
        self._collect = options.collect_timing
        split = options.split_loggers
        base = logging.getLogger(SESSION_LOGGER)
        self._request_log = logging.getLogger(f"{SESSION_LOGGER}.request") if split else base
        self._response_log = logging.getLogger(f"{SESSION_LOGGER}.response") if split else base
        self._id_log = logging.getLogger(f"{SESSION_LOGGER}.request-id") if split else base
        self.timings: deque[Timing] = deque(maxlen=TIMINGS_KEPT)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        self._request_log.debug("REQ: %s %s", request.method, url)
        started = time.perf_counter()
        response = await self._inner.handle_async_request(request)
        seconds = time.perf_counter() - started
        self._response_log.debug("RESP: %s %s: %s", request.method, url, response.status_code)
        request_id = next(
            (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
        )
        if request_id is not None:
            self._id_log.debug("%s call to %s used request id %s", request.method, url, request_id)
        if self._collect:
            self.timings.append(Timing(request.method, url, response.status_code, seconds))
            self._response_log.info(
                "%s %s: %s in %.3f s", request.method, url, response.status_code, seconds
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def tls_context(
    options: SessionOptions, *, verify: bool = True, cafile: Path | None = None
) -> ssl.SSLContext:
    """The TLS settings of a call: the server's certificate checked against `cafile` (httpx's
    CAs without one) unless not `verify`, and the client certificate of certfile.

    Built once per process for the same settings and files, as keystoneauth's Session keeps
    one: loading a CA bundle takes tens of milliseconds of the event loop, per upload of a
    signed image otherwise. A file changed on disk (a renewed CA or client certificate) is
    read anew."""
    files = (cafile, options.certfile, options.keyfile)
    return _built_context(verify, *files, stamps=tuple(_stamp(path) for path in files))


def _stamp(path: Path | None) -> int | None:
    """When `path` last changed (None: no file), so a changed one is not served from cache."""
    if path is None:
        return None
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None  # loading it fails as it did uncached


@functools.lru_cache(maxsize=CONTEXTS_KEPT)
def _built_context(
    verify: bool,
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    *,
    stamps: tuple[int | None, ...],  # noqa: ARG001 -- part of the cache key only
) -> ssl.SSLContext:
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
    else:
        context = httpx.create_ssl_context()  # certifi's CAs, as httpx's verify=True
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile is not None else None)
    return context


def session_client(
    options: SessionOptions,
    *,
    timeout: float,
    verify: bool | None = None,
    cafile: Path | None = None,
) -> httpx.AsyncClient:
    """An httpx client for one service; `timeout` bounds each socket wait. TLS verification
    follows `verify` and `cafile` when given (Barbican has its own [barbican] options), else
    insecure and cafile of `options`. Proxies do not come from the environment."""
    if verify is None:
        verify, cafile = not options.insecure, options.cafile
    context = tls_context(options, verify=verify, cafile=cafile)
    network = TLSErrorTransport(httpx.AsyncHTTPTransport(verify=context))
    transport = SessionTransport(network, options)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)
