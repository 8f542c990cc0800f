"""An httpx transport that fetches only what the URL filter allows, from the address it checked.

Every request goes through it, each redirect hop included (httpx sends every hop through the
transport), so a redirect to a private address is refused like a direct link. Without a proxy
the connection goes to the address the filter resolved and checked, with the original Host
header and TLS server name, so a second DNS answer (rebinding) cannot swap in another address.
"""

from __future__ import annotations

import httpx

from glimpse.net.urlfilter import URLFilter, URLRefused


class FilteredURL(httpx.TransportError):
    """The URL (or a redirect) does not pass the filter."""


class FilteredTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, url_filter: URLFilter, inner: httpx.AsyncBaseTransport, *, pin: bool = True
    ) -> None:
        self.url_filter = url_filter
        self.inner = inner
        self.pin = pin  # False behind a proxy: the proxy connects, by name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            if not self.pin:
                # The proxy resolves names (they may not resolve here) and is the operator's
                # egress control; the lists still apply, and so does a host that is an address.
                self.url_filter.check_unresolved(str(request.url))
                return await self.inner.handle_async_request(request)
            checked = await self.url_filter.check(str(request.url))
        except URLRefused as exc:
            raise FilteredURL(str(exc), request=request) from None
        # A separate request to the pinned address: httpx resolves redirects against the
        # original one, which must keep its name.
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = checked.host
        headers = request.headers.copy()
        headers["Host"] = request.url.netloc.decode("ascii")
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=checked.addresses[0]),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()
