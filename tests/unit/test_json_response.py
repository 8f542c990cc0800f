"""The API's JSONResponse writes the bytes Starlette's would, or fails as it would."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import pytest
from fastapi.responses import JSONResponse as StarletteJSONResponse

from glimpse_api.json_response import JSONResponse


class _Colour(enum.StrEnum):
    RED = "red"


class _Count(int):
    pass


VIEW = {
    "id": "edeb8478-613b-4c3a-b7bd-1596d925f8f8",
    "name": "é漢字😀 \x00\x1f\x7f\u2028",
    "protected": False,
    "size": 2**63 - 1,
    "checksum": None,
    "tags": ["a", "b"],
    "locations": [{"url": "file:///x", "metadata": {"store": "fast", "n": (1, 2)}}],
}


@pytest.mark.parametrize(
    "content",
    [
        VIEW,
        {"metadata": {"ratio": 1e-05}},  # orjson alone would write 0.00001
        {"big": 1e16, "small": 5e-324, "zero": -0.0},
        {1: "int key", None: "none key"},
        {"beyond": 2**70},  # orjson refuses ints past 64 bits
        {_Colour.RED: _Colour.RED, "count": _Count(3)},
        [],
        {},
        "plain",
    ],
)
def test_the_same_bytes_as_starlette(content: Any) -> None:
    ours = JSONResponse(content)
    assert ours.body == StarletteJSONResponse(content).body
    assert ours.headers["content-length"] == str(len(ours.body))


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"nan": float("nan")}, ValueError),  # orjson alone would write null
        ({"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, TypeError),
        ({"id": uuid.UUID(int=1)}, TypeError),
        (["\ud800"], UnicodeEncodeError),
    ],
)
def test_refused_as_starlette_refuses(content: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        StarletteJSONResponse(content)
    with pytest.raises(error):
        JSONResponse(content)
