"""Parsing of image-list query parameters into a typed query (pure; no SQL here)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TypeVar

from glimpse.domain.errors import InvalidInput, ReservedAttribute
from glimpse.domain.images import RESERVED_ATTRIBUTES
from glimpse.domain.members import validate_list_status

T = TypeVar("T")

SORT_KEYS: Final = frozenset(
    {
        "name",
        "status",
        "container_format",
        "disk_format",
        "size",
        "virtual_size",
        "id",
        "created_at",
        "updated_at",
        "owner",
        "visibility",
        "min_disk",
        "min_ram",
        "protected",
        "os_hidden",
    }
)
# Filters matched against a column of the image row (everything else is an extra property).
COLUMN_FILTERS: Final = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "owner",
        "disk_format",
        "container_format",
        "checksum",
        "os_hash_value",
        "os_hash_algo",
        "min_disk",
        "min_ram",
    }
)
# Column filters on integer columns, and the largest value each column holds (a larger one
# would fail in the database rather than match nothing).
INTEGER_FILTERS: Final = {"min_disk": 2**31 - 1, "min_ram": 2**31 - 1}
MAX_SIZE: Final = 2**63 - 1
# Each value is a query parameter, and PostgreSQL takes at most 32767 in one query.
MAX_IN_VALUES: Final = 1000
# Each distinct `tag` is one more EXISTS over image_tags that every image is checked against;
# Glance sets no bound, this one is far beyond what a person filters by.
MAX_TAG_FILTERS: Final = 20
# Filters that take Glance's `in:` operator (and an explicit `eq:`); others match exactly.
IN_FILTERS: Final = frozenset({"id", "name", "status", "container_format", "disk_format"})
TIME_FILTERS: Final = frozenset({"created_at", "updated_at"})
CONTROL_PARAMS: Final = frozenset(
    {"limit", "marker", "sort", "sort_key", "sort_dir", "tag", "size_min", "size_max"}
    | {"protected", "os_hidden", "member_status"}
)


class SortDir(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


class Op(enum.StrEnum):
    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


@dataclass(frozen=True, slots=True)
class TimeFilter:
    column: str
    op: Op
    value: datetime


@dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int
    marker: str | None = None
    sort: tuple[tuple[str, SortDir], ...] = (("created_at", SortDir.DESC),)
    columns: dict[str, tuple[str | int, ...]] = field(default_factory=dict)  # column -> any of
    properties: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    size_min: int | None = None
    size_max: int | None = None
    protected: bool | None = None
    os_hidden: bool = False
    visibility: str | None = None
    # Which answers of the caller's own memberships list shared images (`all`: any).
    member_status: str = "accepted"
    times: tuple[TimeFilter, ...] = ()


def parse_in(value: str) -> tuple[str, ...]:
    """`in:a,b,"c,d"` -> ("a", "b", "c,d"); `eq:x` and a plain value give one element."""
    if value.startswith("eq:"):
        return (value[3:],)
    if not value.startswith("in:"):
        return (value,)
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value[3:]:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise InvalidInput(f"Invalid filter value {value}. The quote is not closed.")
    items.append("".join(current))
    if len(items) > MAX_IN_VALUES:
        raise InvalidInput(f"The in: operator takes at most {MAX_IN_VALUES} values.")
    return tuple(items)


def parse_time(raw: str) -> datetime:
    text = raw.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"Invalid date format: {raw}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_time_filter(column: str, raw: str) -> TimeFilter:
    op_text, sep, rest = raw.partition(":")
    if sep and op_text in Op.__members__.values():
        return TimeFilter(column, Op(op_text), parse_time(rest))
    return TimeFilter(column, Op.EQ, parse_time(raw))


def parse_sort(
    sort: str | None, sort_keys: list[str], sort_dirs: list[str]
) -> tuple[tuple[str, SortDir], ...]:
    """The sort order asked for; a key given again adds nothing and is dropped. More keys
    than there are sortable attributes are refused: each key costs the query (and the marker
    condition) another term."""
    if sort is not None and (sort_keys or sort_dirs):
        raise InvalidInput("The 'sort' parameter cannot be combined with 'sort_key'/'sort_dir'")
    items = sort.split(",") if sort is not None else sort_keys
    if len(items) > len(SORT_KEYS):
        raise InvalidInput(
            f"Too many sort keys: {len(items)}. At most {len(SORT_KEYS)} may be given."
        )
    pairs: list[tuple[str, SortDir]] = []
    if sort is not None:
        for item in items:
            key, _, direction = item.strip().partition(":")
            pairs.append((_sort_key(key), _sort_dir(direction or "desc")))
    else:
        if len(sort_dirs) > max(len(sort_keys), 1):
            raise InvalidInput("The number of sort_dir values must match the sort_key values")
        keys = sort_keys or ["created_at"]
        for index, key in enumerate(keys):
            if sort_dirs:
                direction = sort_dirs[index] if index < len(sort_dirs) else sort_dirs[-1]
            else:
                direction = "desc"
            pairs.append((_sort_key(key), _sort_dir(direction)))
    first: dict[str, SortDir] = {}
    for key, direction in pairs:
        first.setdefault(key, direction)
    return tuple(first.items())


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise InvalidInput(f"Invalid sort key: {key}. It should be one of: {sorted(SORT_KEYS)}")
    return key


def _sort_dir(direction: str) -> SortDir:
    try:
        return SortDir(direction)
    except ValueError:
        raise InvalidInput(f"Invalid sort direction: {direction}") from None


def _non_negative(name: str, raw: str, maximum: int = MAX_SIZE) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"Invalid value for {name}: {raw}. It should be an integer.") from None
    if value < 0:
        raise InvalidInput(f"Invalid value for {name}: {raw}. It should be >= 0.")
    if value > maximum:
        raise InvalidInput(f"Invalid value for {name}: {raw}. It should be <= {maximum}.")
    return value


def _exact_bool(name: str, raw: str) -> bool:
    # Pike: `protected` takes exactly `true` or `false`, case-sensitively.
    if raw not in ("true", "false"):
        raise InvalidInput(f"Invalid value '{raw}' for '{name}' filter. Valid values: true, false.")
    return raw == "true"


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return min(default, maximum)
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInput("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInput("limit param must be positive")
    return min(limit, maximum)


def _split_params(
    params: list[tuple[str, str]],
) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """Separate the repeatable parameters (tag, sort_key, sort_dir) from the rest."""
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {"tag": [], "sort_key": [], "sort_dir": []}
    for key, value in params:
        if key == "tag":
            repeated["tag"].append(value)
        elif key in repeated:
            repeated[key].extend(v.strip() for v in value.split(","))
        else:
            single[key] = value  # for other repeated keys the last value wins, as in Glance
    return single, repeated["tag"], repeated["sort_key"], repeated["sort_dir"]


def _tag_filters(tags: list[str]) -> tuple[str, ...]:
    distinct = tuple(dict.fromkeys(tags))
    if len(distinct) > MAX_TAG_FILTERS:
        raise InvalidInput(f"At most {MAX_TAG_FILTERS} different tag filters are allowed.")
    return distinct


def _optional(single: dict[str, str], key: str, parse: Callable[[str, str], T]) -> T | None:
    return parse(key, single[key]) if key in single else None


def parse_list_query(
    params: list[tuple[str, str]], *, default_limit: int, max_limit: int
) -> ListQuery:
    """Turn the raw (repeatable) query parameters of GET /v2/images into a ListQuery."""
    single, tags, sort_keys, sort_dirs = _split_params(params)
    if "changes-since" in single:
        raise InvalidInput("The 'changes-since' filter is no longer available on v2.")
    columns: dict[str, tuple[str | int, ...]] = {}
    properties: dict[str, tuple[str, ...]] = {}
    times: list[TimeFilter] = []
    for key, value in single.items():
        if key in CONTROL_PARAMS:
            continue
        if key in RESERVED_ATTRIBUTES:
            raise ReservedAttribute(key)
        if key in TIME_FILTERS:
            times.append(parse_time_filter(key, value))
        elif key in INTEGER_FILTERS:
            columns[key] = (_non_negative(key, value, INTEGER_FILTERS[key]),)
        elif key in COLUMN_FILTERS:
            columns[key] = parse_in(value) if key in IN_FILTERS else (value,)
        else:
            properties[key] = (value,)
    visibility = columns.pop("visibility", (None,))[0]
    if visibility not in (None, "public", "private", "shared", "community", "all"):
        raise InvalidInput(f"Invalid visibility value: {visibility}")
    hidden = single.get("os_hidden")
    return ListQuery(
        limit=parse_limit(single.get("limit"), default_limit, max_limit),
        marker=single.get("marker"),
        sort=parse_sort(single.get("sort"), sort_keys, sort_dirs),
        columns=columns,
        properties=properties,
        tags=_tag_filters(tags),
        size_min=_optional(single, "size_min", _non_negative),
        size_max=_optional(single, "size_max", _non_negative),
        protected=_optional(single, "protected", _exact_bool),
        os_hidden=_exact_bool("os_hidden", hidden.lower()) if hidden is not None else False,
        visibility=visibility,
        member_status=validate_list_status(single.get("member_status", "accepted")),
        times=tuple(times),
    )
