"""A list page merged from visibility parts (the caller's own images, others' public, community
and shared ones) holds the rows, in the order, that Glance's rules give: every caller, every
visibility filter and membership answer, paged by marker to the end, on both databases.

The reference is Glance's rule written out in Python over the same rows (owners with and
without a project, every visibility, memberships of every answer, some deleted, images
deleted or hidden, ties in created_at that the id breaks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from glimpse.context import RequestContext
from glimpse.db.core import table_of
from glimpse.db.engine import Database
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.db.tables import Image, ImageMember
from glimpse.domain.listing import parse_list_query

PROJECTS = ("project-1", "project-2", "project-3", None)
VISIBILITIES = ("private", "public", "shared", "community")
ANSWERS = ("accepted", "pending", "rejected")
START = datetime(2024, 1, 1)  # noqa: DTZ001 -- the columns hold naive UTC
PAGE = 7


@dataclass(frozen=True)
class Row:
    id: str
    name: str | None
    owner: str | None
    visibility: str
    created_at: datetime
    deleted: bool
    os_hidden: bool


def rows_and_members() -> tuple[list[Row], dict[tuple[str, str], tuple[str, bool]]]:
    rng = random.Random(20261207)  # noqa: S311 -- reproducible rows, not a secret
    rows = [
        Row(
            id=f"{rng.getrandbits(32):08x}-0000-4000-8000-{index:012d}",
            name=rng.choice((None, "a", "b", "c")),
            owner=rng.choice(PROJECTS),
            visibility=rng.choice(VISIBILITIES),
            created_at=START + timedelta(minutes=rng.randrange(40)),  # ties
            deleted=rng.random() < 0.1,
            os_hidden=rng.random() < 0.1,
        )
        for index in range(120)
    ]
    members: dict[tuple[str, str], tuple[str, bool]] = {}
    for row in rows:
        for project in PROJECTS[:3]:
            if project != row.owner and rng.random() < 0.4:
                members[row.id, project] = (rng.choice(ANSWERS), rng.random() < 0.2)
    return rows, members


ROWS, MEMBERS = rows_and_members()


def glance_sees(row: Row, project: str | None, member_status: str, visibility: str | None) -> bool:
    """Glance's list rule for a caller who is not an admin."""
    owned = project is not None and row.owner == project
    answer, member_deleted = MEMBERS.get((row.id, project or ""), ("", True))
    member = not member_deleted and member_status in {"all", answer}
    seen = row.visibility in {"public", "community"} or owned
    seen = seen or (row.visibility == "shared" and member)
    if visibility == "all":
        return seen
    if visibility is not None:
        return seen and row.visibility == visibility
    return seen and (owned or row.visibility != "community")


def expected(
    project: str | None, member_status: str, visibility: str | None, by_name: bool
) -> list[str]:
    listed = [
        row
        for row in ROWS
        if not row.deleted
        and not row.os_hidden
        and glance_sees(row, project, member_status, visibility)
    ]
    if by_name:  # name ascending (no name first), then created_at and id ascending
        listed.sort(key=lambda row: (row.name or "", row.created_at, row.id))
    else:  # newest first, the id breaking ties
        listed.sort(key=lambda row: (row.created_at, row.id), reverse=True)
    return [row.id for row in listed]


@pytest.fixture
async def seeded(database: Database) -> Database:
    async with database.write() as session:
        await session.execute(
            sa.insert(table_of(Image)),
            [
                {
                    "id": row.id,
                    "name": row.name,
                    "status": "active",
                    "visibility": row.visibility,
                    "owner": row.owner,
                    "min_disk": 0,
                    "min_ram": 0,
                    "protected": False,
                    "os_hidden": row.os_hidden,
                    "created_at": row.created_at,
                    "deleted": row.deleted,
                }
                for row in ROWS
            ],
        )
        await session.execute(
            sa.insert(table_of(ImageMember)),
            [
                {
                    "image_id": image_id,
                    "member": project,
                    "status": answer,
                    "created_at": START,
                    "deleted": deleted,
                }
                for (image_id, project), (answer, deleted) in MEMBERS.items()
            ],
        )
    return database


async def listed(
    database: Database, ctx: RequestContext, params: list[tuple[str, str]]
) -> list[str]:
    """Every page of the list, each after the last one's final image."""
    ids: list[str] = []
    async with database.read_connection() as connection:
        lookup = ImageLookup(connection)
        query = parse_list_query([*params, ("limit", str(PAGE))], default_limit=25, max_limit=100)
        while True:
            marker = await lookup.image(ids[-1]) if ids else None
            page = [item.image.id for item in await lookup.page(ctx, query, marker)]
            ids += page
            if len(page) < PAGE:
                return ids


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("visibility", [None, "all", "shared", "public", "community", "private"])
@pytest.mark.parametrize("by_name", [False, True], ids=["newest-first", "by-name"])
async def test_pages_hold_what_glance_lists(
    seeded: Database, visibility: str | None, by_name: bool
) -> None:
    params = [("visibility", visibility)] if visibility else []
    if by_name:
        params.append(("sort", "name:asc"))
    for project in ("project-1", "project-2", "project-4", None):
        ctx = RequestContext(project_id=project, user_id="user", roles=frozenset({"member"}))
        for member_status in ("accepted", "pending", "all"):
            got = await listed(seeded, ctx, [*params, ("member_status", member_status)])
            want = expected(project, member_status, visibility, by_name)
            assert got == want, (project, member_status)
    assert expected("project-1", "accepted", None, by_name)  # the rows give pages to compare


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("visibility", [None, "all", "shared"])
async def test_a_filtered_page_sorted_both_ways_holds_what_glance_lists(
    seeded: Database, visibility: str | None
) -> None:
    """Each part is cut by the filter and sorted by several keys in both directions before the
    merge: the merged pages are still the rule's rows, in that order."""
    cutoff = START + timedelta(minutes=12)
    params = [
        ("sort", "name:desc,created_at:asc"),
        ("created_at", f"gte:{cutoff:%Y-%m-%dT%H:%M:%SZ}"),
    ]
    if visibility:
        params.append(("visibility", visibility))
    longest = 0
    for project in ("project-1", "project-3", None):
        ctx = RequestContext(project_id=project, user_id="user", roles=frozenset({"member"}))
        for member_status in ("rejected", "all"):
            shown = set(expected(project, member_status, visibility, by_name=False))
            rows = [row for row in ROWS if row.id in shown and row.created_at >= cutoff]
            # Least significant key first (stable sorts): id and created_at ascending (the
            # last key's direction), then name descending with no name as the empty one.
            rows.sort(key=lambda row: (row.created_at, row.id))
            rows.sort(key=lambda row: row.name or "", reverse=True)
            got = await listed(seeded, ctx, [*params, ("member_status", member_status)])
            assert got == [row.id for row in rows], (project, member_status)
            longest = max(longest, len(got))
    assert longest > PAGE  # some list took several pages: the marker was used
