"""A JSONResponse whose body is written by orjson where orjson writes the very bytes the
standard library would, and by the standard library otherwise.

Starlette's JSONResponse encodes with json.dumps, which costs an image's view some twenty
times what orjson does (a few percent of a show's whole CPU). The two write the same bytes for
str keys and exact str, int, bool, None, list and dict values, except floats (orjson writes
1e-05 as 0.00001, and NaN as null where json.dumps refuses it): content holding a float, a
value of any other type (a subclass, a datetime, a dataclass) or anything orjson refuses (an
int beyond 64 bits, a non-str key, a lone surrogate) is written, or refused, by json.dumps as
before.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from fastapi.responses import JSONResponse as StarletteJSONResponse

# Every type orjson would write on its own or hand to default is handed to default (which
# refuses it): only exact str, int, bool, None, list, tuple and dict remain orjson's.
_EXACT_TYPES_ONLY: Final = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_SCALARS: Final = frozenset({str, int, bool, type(None)})


def _refuse(value: object) -> Any:  # noqa: ANN401 -- orjson's default hook
    raise TypeError(type(value).__name__)


def _floatless(content: Any) -> bool:  # noqa: ANN401 -- any JSON-like content
    """Whether `content` is made of dicts, lists and tuples of strs, ints, bools and None
    (a loop over the values rather than a call for each: most of a view's are scalars)."""
    kind = type(content)
    if kind is dict:
        values = content.values()
    elif kind is list or kind is tuple:
        values = content
    else:
        return kind in _SCALARS
    for value in values:
        kind = type(value)
        if kind in _SCALARS:
            continue
        if (kind is dict or kind is list or kind is tuple) and _floatless(value):
            continue
        return False
    return True


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:  # noqa: ANN401 -- as Starlette's
        if _floatless(content):
            try:
                return orjson.dumps(content, default=_refuse, option=_EXACT_TYPES_ONLY)
            except TypeError:  # orjson.JSONEncodeError: refused, json.dumps decides
                pass
        return super().render(content)
