"""The image list reads its page from indexes in order, whatever the table's size: an admin's
from ix_images_listing, a name filter's from ix_images_listing_name, a project's as the merge
of its own images (ix_images_listing_owner) and others' it may see (ix_images_listing_visibility).
SQLite's plan, which (without ANALYZE, as the service runs it) does not depend on the rows,
shows the indexes, the range after a marker, and no sort of the whole table."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories import image_lookup, images
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.db.tables import Image
from glimpse.domain.listing import parse_list_query
from statement_capture import selects_run

MEMBER = RequestContext(project_id="project-1", user_id="user-1", roles=frozenset({"member"}))
ADMIN = RequestContext(
    project_id="project-1", user_id="admin-1", roles=frozenset({"admin"}), is_admin=True
)
MARKER = Image(
    id="7f0c3a2e-0000-4000-8000-000000000001",
    name="m",
    status="active",
    visibility="private",
    owner="project-1",
    created_at=datetime(2024, 5, 1, 12, 0, 0),  # noqa: DTZ001 -- the columns hold naive UTC
)


async def plan_of(
    database: Database, ctx: RequestContext, params: list[tuple[str, str]], marker: Image | None
) -> str:
    """SQLite's EXPLAIN QUERY PLAN of the page query, one line per step."""
    with selects_run(database) as statements:
        async with database.read_connection() as connection:
            query = parse_list_query(params, default_limit=25, max_limit=1000)
            await ImageLookup(connection).page(ctx, query, marker)
    [(statement, parameters)] = statements
    async with database.reader_engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)


_OWN = "ix_images_listing_owner (deleted=? AND os_hidden=? AND owner=?{})"
_OTHERS = "ix_images_listing_visibility (deleted=? AND os_hidden=? AND visibility=?{})"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("ctx", "params", "marker", "index_uses"),
    [
        (ADMIN, [("limit", "25")], None, ["ix_images_listing (deleted=? AND os_hidden=?)"]),
        # A project's page merges its own images with others' (public, then shared).
        (MEMBER, [("limit", "25")], None, [_OWN.format(""), _OTHERS.format("")]),
        (
            MEMBER,
            [("limit", "25"), ("sort", "created_at:desc")],
            None,
            [_OWN.format(""), _OTHERS.format("")],
        ),
        (
            MEMBER,
            [("limit", "25"), ("name", "cirros")],
            None,
            ["ix_images_listing_name (deleted=? AND os_hidden=? AND name=?)"],
        ),
        (
            MEMBER,
            [("limit", "25")],
            MARKER,
            [_OWN.format(" AND created_at<?"), _OTHERS.format(" AND created_at<?")],
        ),
        (
            MEMBER,
            [("limit", "25"), ("sort_key", "created_at"), ("sort_dir", "asc")],
            MARKER,
            [_OWN.format(" AND created_at>?"), _OTHERS.format(" AND created_at>?")],
        ),
        (
            MEMBER,
            [("limit", "25"), ("visibility", "all"), ("member_status", "all")],
            None,
            [_OWN.format(""), _OTHERS.format("")],
        ),
    ],
    ids=["admin", "default", "created_at-desc", "name", "marker", "marker-asc", "all"],
)
async def test_a_page_is_read_in_index_order(
    database: Database,
    ctx: RequestContext,
    params: list[tuple[str, str]],
    marker: Image | None,
    index_uses: list[str],
) -> None:
    plan = (await plan_of(database, ctx, params, marker)).splitlines()
    searches = [
        line for line in plan if re.fullmatch(r"SEARCH images USING (COVERING )?INDEX .*", line)
    ]
    for index_use in index_uses:
        assert any(line.endswith(f"INDEX {index_use}") for line in searches), plan
    assert not any(line.startswith("SCAN images") for line in plan), plan
    sorts = [line for line in plan if "TEMP B-TREE" in line]
    if len(index_uses) == 1:
        assert not sorts, plan  # no sort of the matching rows
        return
    # Several parts, each read in order and stopped at the page's limit: only those few rows
    # of each part are sorted, as they are merged into the page, whose images are then read
    # by id (and put back in order).
    assert "SCAN page" in plan, plan
    page = plan.index("SCAN page")
    assert "SEARCH images USING INDEX sqlite_autoindex_images_1 (id=?)" in plan[page:], plan
    for index, line in enumerate(plan):
        if "TEMP B-TREE" in line:
            assert index > page or re.fullmatch(r"SCAN part_\d", plan[index - 1]), plan
    parts = [line for line in plan if re.fullmatch(r"CO-ROUTINE part_\d", line)]
    assert len(parts) >= len(index_uses), plan
    for part in parts:  # a part's first step is its index search
        assert plan[plan.index(part) + 1] in searches, plan


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_whether_the_project_is_a_member_at_all_is_asked_once_by_member(
    database: Database,
) -> None:
    """Once per page (uncorrelated), so a project that is nobody's member skips the shared
    images whole; by the member index, not by reading every live membership."""
    plan = (await plan_of(database, MEMBER, [("limit", "25")], None)).splitlines()
    once = [index for index, line in enumerate(plan) if line.startswith("SCALAR SUBQUERY")]
    assert len(once) == 1, plan
    search = "SEARCH image_members USING INDEX ix_image_members_member (member=?)"
    assert plan[once[0] + 1] == search, plan


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("statement", "search"),
    [
        # A show's flag for active locations, then the locations of a shown and a listed image.
        (image_lookup._SHOWN.params(image_id="x"), "image_locations USING COVERING INDEX"),  # noqa: SLF001 -- the statement itself is what is planned
        (image_lookup._ACTIVE_LOCATIONS.params(ids=["x"]), "image_locations USING INDEX"),  # noqa: SLF001 -- likewise
        (images._ACTIVE_LOCATIONS.params(ids=["x", "y"]), "image_locations USING INDEX"),  # noqa: SLF001 -- likewise
    ],
)
async def test_active_locations_are_read_by_their_image(
    database: Database, statement: sa.Select[Any], search: str
) -> None:
    """By image and status, not by status alone: that would read every active location."""
    sql = str(statement.compile(database.reader_engine, compile_kwargs={"literal_binds": True}))
    async with database.reader_engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        plan = "\n".join(str(row[-1]) for row in rows)
    assert f"{search} ix_image_locations_image_id_status (image_id=? AND status=?)" in plan
