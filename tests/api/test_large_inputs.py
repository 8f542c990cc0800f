"""Inputs whose size a client chooses cost linear work: tag lists are de-duplicated in one
pass, sort keys are bounded by the sortable attributes (repeats dropped), and the paging
marker's condition grows linearly with the sort keys. The tests check results and statuses,
and count comparisons and query parameters, never time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
import sqlalchemy as sa

from factories import create
from glimpse.domain import attributes
from glimpse.domain.listing import SORT_KEYS

MANY: Final = 100_000  # distinct tags that fit in a 1 MiB body
JSON: Final = {"Content-Type": "application/json"}
PATCH: Final = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


class CountedTag(str):
    """A tag that counts how often it is compared for equality."""

    __slots__ = ()
    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedTag.comparisons += 1
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        return str.__hash__(self)


def test_tag_de_duplication_compares_each_tag_a_bounded_number_of_times() -> None:
    tags = [CountedTag(f"t{index}") for index in range(5_000)]
    CountedTag.comparisons = 0
    deduplicated = attributes.validate_tags([*tags, *tags[:10]])
    assert deduplicated == [f"t{index}" for index in range(5_000)]
    # Hashing: one comparison per repeat (and per rare collision), not one per pair.
    assert CountedTag.comparisons <= 2 * len(tags)


def tags_body(tags: list[str]) -> bytes:
    body = json.dumps({"name": "tagged", "tags": tags}, separators=(",", ":")).encode()
    assert len(body) <= 1024 * 1024  # within the JSON body cap: this is about the work
    return body


async def test_a_hundred_thousand_distinct_tags_are_counted_against_the_quota(
    client: httpx.AsyncClient,
) -> None:
    tags = [f"t{index:05}" for index in range(MANY)]
    response = await client.post("/v2/images", content=tags_body(tags), headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json()["message"] == (
        "The limit has been exceeded on the number of allowed image tags. "
        f"Attempted: {MANY}, Maximum: 128"
    )
    assert (await client.get("/v2/images")).json()["images"] == []
    image_id = (await create(client, name="patched"))["id"]
    patched = await client.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/tags", "value": tags}],
        headers=PATCH,
    )
    assert patched.status_code == 413, patched.text
    assert (await client.get(f"/v2/images/{image_id}")).json()["tags"] == []


async def test_a_hundred_thousand_repeats_of_a_few_tags_keep_one_of_each(
    client: httpx.AsyncClient,
) -> None:
    tags = [f"t{index % 100:02}" for index in range(MANY)]
    response = await client.post("/v2/images", content=tags_body(tags), headers=JSON)
    assert response.status_code == 201, response.text
    assert sorted(response.json()["tags"]) == [f"t{index:02}" for index in range(100)]


@pytest.mark.parametrize(
    "params",
    [
        [("sort_key", "name")] * (len(SORT_KEYS) + 1),
        [("sort_key", ",".join(["name"] * 5000))],
        [("sort", ",".join(["name:asc"] * (len(SORT_KEYS) + 1)))],
        [("sort_key", ",".join([*sorted(SORT_KEYS), "name"]))],
    ],
    ids=["repeated-param", "5000-in-one", "sort", "all-and-one"],
)
async def test_more_sort_keys_than_sortable_attributes_are_refused(
    client: httpx.AsyncClient, params: list[tuple[str, str]]
) -> None:
    response = await client.get("/v2/images", params=params)
    assert response.status_code == 400, response.text
    given = sum(len(value.split(",")) for _, value in params)
    assert response.json()["message"] == (
        f"Too many sort keys: {given}. At most {len(SORT_KEYS)} may be given."
    )


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """(SQL, parameters) of every statement any engine of this process runs meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        _connection, _cursor, statement, parameters, _context, _many = args
        seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


async def page_after(
    client: httpx.AsyncClient, statements: list[tuple[str, Any]], keys: list[str], marker: str
) -> tuple[list[str], int]:
    """The ids on the page after `marker`, and how many parameters its query bound."""
    statements.clear()
    response = await client.get(
        "/v2/images", params={"sort_key": ",".join(keys), "marker": marker, "limit": 100}
    )
    assert response.status_code == 200, response.text
    [parameters] = [params for sql, params in statements if "ORDER BY" in sql and "images" in sql]
    return [image["id"] for image in response.json()["images"]], len(parameters)


async def test_the_marker_condition_grows_linearly_with_the_sort_keys(
    client: httpx.AsyncClient, statements: list[tuple[str, Any]]
) -> None:
    for index in range(6):
        await create(client, name=f"n{index}", min_disk=index % 2, min_ram=index % 3)
    # Keys compared as they are (no NULL stand-in), so each binds only the marker's value;
    # created_at and id always follow.
    short = ["min_disk"]
    long = ["min_disk", "min_ram", "status", "visibility", "protected", "os_hidden"]
    for keys in (short, long):
        full = await client.get("/v2/images", params={"sort_key": ",".join(keys)})
        ordered = [image["id"] for image in full.json()["images"]]
        assert len(ordered) == 6
        after, _ = await page_after(client, statements, keys, ordered[1])
        assert after == ordered[2:]
    _, params_short = await page_after(client, statements, short, ordered[1])
    _, params_long = await page_after(client, statements, long, ordered[1])
    # Nested, each further key binds the marker's value at most twice (beyond it, equal to
    # it; PostgreSQL's numbered parameters share one); the flat OR of prefixes would bind it
    # once more for every later key (quadratic).
    added = len(long) - len(short)
    assert added <= params_long - params_short <= 2 * added


async def test_repeated_sort_keys_are_dropped(
    client: httpx.AsyncClient, statements: list[tuple[str, Any]]
) -> None:
    for name in ("b", "a", "c"):
        await create(client, name=name)
    repeated = ["name", "name", "name", "name"]
    statements.clear()
    response = await client.get(
        "/v2/images", params={"sort_key": ",".join(repeated), "sort_dir": "asc"}
    )
    assert [image["name"] for image in response.json()["images"]] == ["a", "b", "c"]
    [sql] = [sql for sql, _ in statements if "ORDER BY" in sql and "images" in sql]
    order_by = sql.rpartition("ORDER BY")[2]
    assert order_by.count("name") == 1
