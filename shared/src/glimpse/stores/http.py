"""The `http` store: read-only image data at http(s):// URLs, as glance_store's http store.

A location is the URL itself. Reads stream with a `Range` header for a span; a server that
ignores it and answers 200 with the whole object still yields only the span asked for (the
bytes before it are skipped as they arrive, the stream stops after it). Sizes come from HEAD's
Content-Length, or from the total of a `Range: bytes=0-0` answer when HEAD gives none.
Redirects are followed up to MAX_REDIRECTS times (glance_store's limit). Proxies come only from
`http_proxy_information`, not from the environment, so what a store reaches is in its config.
Built from settings, the store reads only URLs that pass `[import_filtering_opts]`, checked on
every request and every redirect, from the address that was checked (see glimpse.net.transport).
Each request must answer within `http_request_timeout` (redirects included; a size look-up's
requests together), and a read must bring each MiB within it too, so a server that answers a
byte at a time cannot hold a reader.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from typing import Final, NoReturn
from urllib.parse import urlsplit

import httpx

from glimpse.config import Settings
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.net.deadline import DeadlineExceeded, bounded, within
from glimpse.net.tls_errors import TLSErrorTransport
from glimpse.net.transport import FilteredTransport
from glimpse.net.urlfilter import URLFilter
from glimpse.stores.base import (
    Capability,
    CapabilityMissing,
    ObjectNotFound,
    ResolvedRange,
    StoredObject,
    StoreError,
)

READ_CHUNK: Final = 1024 * 1024
MAX_REDIRECTS: Final = 5
TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
DEADLINE: Final = 60.0
_CONTENT_RANGE: Final = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# Range offsets apply to the bytes as stored, so ask for them unencoded.
_HEADERS: Final = {"Accept-Encoding": "identity"}


class HttpStore:
    capabilities = Capability.READ | Capability.RANGE_READ

    def __init__(
        self,
        name: str,
        *,
        verify: ssl.SSLContext | bool = True,
        proxies: dict[str, str] | None = None,
        url_filter: URLFilter | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        self.name = name
        self.deadline = deadline

        def transport(proxy: str | None = None) -> httpx.AsyncBaseTransport:
            inner = TLSErrorTransport(httpx.AsyncHTTPTransport(proxy=proxy, verify=verify))
            if url_filter is None:
                return inner
            return FilteredTransport(url_filter, inner, pin=proxy is None)

        mounts = {f"{scheme}://": transport(proxy) for scheme, proxy in (proxies or {}).items()}
        self.client = httpx.AsyncClient(
            transport=transport(),
            mounts=mounts,
            trust_env=False,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=TIMEOUT,
            headers=_HEADERS,
        )

    def _url(self, location: str) -> str:
        if urlsplit(location).scheme not in ("http", "https"):
            raise StoreError(f"not an http(s) location: {_redact(location)!r}")
        return location

    def location_for(self, key: str) -> str:  # noqa: ARG002 -- the protocol's signature
        raise CapabilityMissing(f"store {self.name} is read-only")

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:  # noqa: ARG002 -- refuses every write
        raise CapabilityMissing(f"store {self.name} is read-only")

    async def delete(self, location: str) -> None:  # noqa: ARG002 -- never deletes what it does not own
        raise CapabilityMissing(f"store {self.name} is read-only")

    async def get(
        self, location: str, byte_range: ResolvedRange | None = None
    ) -> AsyncIterator[bytes]:
        url = self._url(location)
        if byte_range is not None and byte_range.stop <= byte_range.start:
            return
        headers = {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range.start}-{byte_range.stop - 1}"
        what = f"GET {_redact(location)}"
        request = self.client.build_request("GET", url, headers=headers)
        try:
            response = await within(self.deadline, what, self.client.send(request, stream=True))
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            self._fail(location, exc)
        try:
            skip, remaining = self._span(response, location, byte_range)
            async for raw in bounded(response.aiter_raw(READ_CHUNK), what, each=self.deadline):
                # A server that ignored Range sends everything: drop what precedes the span.
                dropped = min(skip, len(raw))
                skip -= dropped
                if remaining is None:
                    piece = raw[dropped:]
                else:
                    piece = raw[dropped : dropped + remaining]
                    remaining -= len(piece)
                if piece:
                    yield piece
                if remaining == 0:
                    break
            if remaining or skip:
                raise StoreError(f"store {self.name}: {_redact(location)} ended early")
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            self._fail(location, exc)
        finally:
            await response.aclose()

    def _span(
        self, response: httpx.Response, location: str, byte_range: ResolvedRange | None
    ) -> tuple[int, int | None]:
        """(bytes to skip, bytes to yield or None for all) for a response to a GET."""
        self._check_status(response, location)
        if byte_range is None:
            return 0, None
        wanted = byte_range.stop - byte_range.start
        if response.status_code == httpx.codes.PARTIAL_CONTENT:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != byte_range.start:
                raise StoreError(
                    f"store {self.name}: {_redact(location)} answered another range "
                    f"({response.headers.get('Content-Range')!r})"
                )
            return 0, wanted
        return byte_range.start, wanted  # 200: the whole object

    def _check_status(self, response: httpx.Response, location: str) -> None:
        status = response.status_code
        if status == httpx.codes.NOT_FOUND:
            raise ObjectNotFound(_redact(location))
        if status not in (httpx.codes.OK, httpx.codes.PARTIAL_CONTENT):
            raise StoreError(f"store {self.name}: {_redact(location)} answered {status}")

    def _fail(self, location: str, exc: httpx.HTTPError | DeadlineExceeded) -> NoReturn:
        raise StoreError(
            f"store {self.name}: {_redact(location)} failed: {type(exc).__name__}: "
            f"{redact_text(str(exc))}"
        ) from exc

    async def size(self, location: str) -> int:
        url = self._url(location)
        try:
            size = await within(self.deadline, f"size of {_redact(location)}", self._size(url))
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            self._fail(location, exc)
        if size is None:
            raise StoreError(f"store {self.name}: {_redact(location)} does not tell its size")
        return size

    async def _size(self, url: str) -> int | None:
        head = await self.client.head(url)
        self._check_status(head, url)
        length = head.headers.get("Content-Length")
        if length is not None and length.isdigit():
            return int(length)
        # No length on HEAD (some servers stream it): ask for one byte and read the total.
        async with self.client.stream("GET", url, headers={"Range": "bytes=0-0"}) as response:
            self._check_status(response, url)
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if response.status_code == httpx.codes.PARTIAL_CONTENT and match:
                total = match.group(3)
                if total.isdigit():
                    return int(total)
            length = response.headers.get("Content-Length")
            if response.status_code == httpx.codes.OK and length and length.isdigit():
                return int(length)
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


def _redact(location: str) -> str:
    """The URL without its credentials, which must never reach a message or a log."""
    return redact_url(location)


def _proxy_url(proxy: str) -> str:
    # glance_store passes these to requests, which assumes http:// for a bare host:port.
    return proxy if "://" in proxy else f"http://{proxy}"


def from_settings(store_id: str, settings: Settings) -> HttpStore:
    options = settings.store_options(store_id)
    verify: ssl.SSLContext | bool
    if options.https_ca_certificates_file is not None:
        verify = ssl.create_default_context(cafile=str(options.https_ca_certificates_file))
    else:
        verify = not options.https_insecure
    proxies = {
        scheme: _proxy_url(proxy) for scheme, proxy in options.http_proxy_information.items()
    }
    # Image URLs come from users: every read (and redirect) passes [import_filtering_opts].
    url_filter = URLFilter(settings.import_filtering_opts)
    return HttpStore(
        store_id,
        verify=verify,
        proxies=proxies,
        url_filter=url_filter,
        deadline=float(options.http_request_timeout),
    )
