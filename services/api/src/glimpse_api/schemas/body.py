"""Reading JSON request bodies with Glance's error semantics."""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request

from glimpse.domain.errors import InvalidInput, LimitExceeded

MAX_JSON_BODY: Final = 1024 * 1024
MAX_JSON_DEPTH: Final = 32
_TOO_DEEP: Final = f"JSON in the request body may nest at most {MAX_JSON_DEPTH} levels."


async def read_json(request: Request) -> Any:  # noqa: ANN401 -- any JSON document
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise LimitExceeded("Request body is too large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        document = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("Malformed JSON in request body.") from None
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
