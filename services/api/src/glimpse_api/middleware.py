"""Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer and slow streamed bodies)."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse.context import new_request_id
from glimpse.logs import bind_request, unbind
from glimpse.services.health import draining
from glimpse_api.errors import error_response

REQUEST_ID_HEADER: Final = "x-openstack-request-id"
_VERSION_PREFIX: Final = re.compile(r"^/v2(?:\.(\d+))?(?=/|$)")


MAX_REQUEST_ID_LENGTH: Final = 64
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]+$")


def _adopted_request_id(scope: Scope) -> str | None:
    """A request id the caller sent (as Glance adopts one), if it is short and plain."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-openstack-request-id":
            text = value.decode("latin-1").strip()
            if not text.startswith("req-"):
                text = f"req-{text}"
            if len(text) <= MAX_REQUEST_ID_LENGTH and _REQUEST_ID_RE.match(text):
                return text
            return None
    return None


class EdgeMiddleware:
    """What every request passes through first, in one layer (each ASGI layer and each send
    wrapper costs a call per message on every request):

    - an id for every request (the caller's, as Glance adopts one, else a new one), kept in
      scope state, bound to the request's log lines and echoed on every response;
    - `/v2.N/...` reaches the same routes as `/v2/...` (minor versions are informational);
    - no resource is named with a NUL and no database stores one (PostgreSQL refuses it in
      text): a path holding one names nothing (404), a query string holding one is refused
      (400), before any route passes it on;
    - `http_keepalive = false`: every response carries `Connection: close`, after which the
      server closes the connection (uvicorn honours the header), as Glance does. While the
      process drains before it stops, every response closes its connection whatever the
      option says: the client's next request opens a new one, which the balancer sends
      elsewhere.
    """

    def __init__(self, app: ASGIApp, *, keepalive: bool = True) -> None:
        self.app = app
        self.keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _adopted_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        keepalive = self.keepalive

        async def send_edge(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if not (keepalive and not draining()):
                    headers["connection"] = "close"
            await send(message)

        token = bind_request(request_id)  # log lines of this request carry its id
        try:
            path: str = scope["path"]
            match = _VERSION_PREFIX.match(path)
            if match and match.group(1) is not None:
                scope = dict(scope, path="/v2" + path[match.end() :])
            refusal = _nul_refusal(scope)
            if refusal is not None:
                accept = Headers(scope=scope).get("accept", "")
                await error_response(*refusal, accept=accept)(scope, receive, send_edge)
                return
            await self.app(scope, receive, send_edge)
        finally:
            unbind(token)


def _nul_refusal(scope: Scope) -> tuple[HTTPStatus, str] | None:
    if "\x00" in scope["path"]:
        return HTTPStatus.NOT_FOUND, "The resource could not be found."
    if b"%00" in scope["query_string"]:
        return HTTPStatus.BAD_REQUEST, "The query string may not hold a NUL (%00)."
    return None
