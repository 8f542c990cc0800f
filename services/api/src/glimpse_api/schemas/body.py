"""Reading JSON request bodies with Glance's error semantics."""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request

from glimpse.domain.errors import InvalidInput, LimitExceeded

MAX_JSON_BODY: Final = 1024 * 1024


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
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("Malformed JSON in request body.") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    document = await read_json(request)
    if not isinstance(document, dict):
        raise InvalidInput("Body must be a JSON object.")
    return document
