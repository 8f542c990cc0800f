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
MAX_JSON_DEPTH: Final = 32
_TOO_DEEP: Final = f"JSON in the request body may nest at most {MAX_JSON_DEPTH} levels."
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
        document = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedJSON("Malformed JSON in request body.") from None
    except RecursionError:  # nested deeper than the decoder goes
        raise InvalidInput(_TOO_DEEP) from None
    problem = _problem(document)
    if problem is not None:
        raise InvalidInput(problem)
    return document


async def read_json_object(request: Request) -> dict[str, Any]:
    document = await read_json(request)
    if not isinstance(document, dict):
        raise InvalidInput("Body must be a JSON object.")
    return document


def _problem(document: Any) -> str | None:  # noqa: ANN401 -- any JSON document
    """Why the document cannot be taken as it is, if it cannot: JSON's \\u escapes can spell
    a NUL, which PostgreSQL refuses in text, and lone surrogates, which no encoder takes; and
    no document of this API nests deeply, while serializers give up at some depth."""
    pending = [(document, 1)]  # a loop, not recursion: the nesting is the client's to choose
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return _TOO_DEEP
        if isinstance(item, str) and not _storable(item):
            return "Strings in the request body must be UTF-8 text without NUL."
        if isinstance(item, list):
            pending.extend((value, depth + 1) for value in item)
        elif isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((value, depth + 1) for value in item.values())
    return None


def _storable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return "\x00" not in text
