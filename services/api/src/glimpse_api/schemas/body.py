"""Reading JSON request bodies with Glance's error semantics.

Every route that takes a JSON document reads it here, so none reads more than MAX_JSON_BODY
bytes of it: a larger body is refused (413) as soon as its Content-Length says so, or once
that many bytes have arrived when it streams without one.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request

from glimpse.domain.errors import InvalidInput, LimitExceeded

MAX_JSON_BODY: Final = 1024 * 1024
TOO_LARGE: Final = "Request body is too large"


class MalformedJSON(InvalidInput):
    """The body is not JSON (400)."""


def content_length(request: Request) -> int | None:
    """The body size the request announces (None when it is chunked)."""
    length = request.headers.get("content-length", "").strip()
    return int(length) if length.isdigit() else None


async def read_json(request: Request) -> Any:  # noqa: ANN401 -- any JSON document
    """The body's JSON document (None when the body is empty)."""
    announced = content_length(request)
    if announced is not None and announced > MAX_JSON_BODY:
        raise LimitExceeded(TOO_LARGE)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise LimitExceeded(TOO_LARGE)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedJSON("Malformed JSON in request body.") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    document = await read_json(request)
    if not isinstance(document, dict):
        raise InvalidInput("Body must be a JSON object.")
    return document
