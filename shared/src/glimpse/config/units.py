"""Size strings as Glance writes them in `user_storage_quota` (e.g. 0, 500MB, 10GB, 1TB)."""

from __future__ import annotations

import re
from typing import Final

_UNITS: Final = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_SIZE_RE: Final = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Return a byte count; raise ValueError for anything that is not `<digits>[KB|MB|GB|TB]`."""
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value)
    if match is None:
        msg = f"invalid size {value!r}: expected a number with an optional B, KB, MB, GB or TB"
        raise ValueError(msg)
    number, unit = match.groups()
    return int(number) * _UNITS[(unit or "").upper()]
