"""The image list reads its page from ix_images_listing(_name) in order, whatever the table's
size: SQLite's plan, which (without ANALYZE, as the service runs it) does not depend on the
rows, shows the index, the range after a marker, and no sort of the whole table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories import image_lookup, images
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image
from glimpse.domain.listing import parse_list_query
from statement_capture import selects_run

MEMBER = RequestContext(project_id="project-1", user_id="user-1", roles=frozenset({"member"}))
MARKER = Image(
    id="7f0c3a2e-0000-4000-8000-000000000001",
    name="m",
    status="active",
    visibility="private",
    owner="project-1",
    created_at=datetime(2024, 5, 1, 12, 0, 0),  # noqa: DTZ001 -- the columns hold naive UTC
)


async def plan_of(database: Database, params: list[tuple[str, str]], marker: Image | None) -> str:
    """SQLite's EXPLAIN QUERY PLAN of the page query, one line per step."""
    with selects_run(database) as statements:
        async with database.read() as session:
            query = parse_list_query(params, default_limit=25, max_limit=1000)
            await ImageRepository(session).page(MEMBER, query, marker)
    [(statement, parameters)] = statements
    async with database.reader_engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("params", "marker", "index_use"),
    [
        ([("limit", "25")], None, "ix_images_listing (deleted=? AND os_hidden=?)"),
        (
            [("limit", "25"), ("sort", "created_at:desc")],
            None,
            "ix_images_listing (deleted=? AND os_hidden=?)",
        ),
        (
            [("limit", "25"), ("name", "cirros")],
            None,
            "ix_images_listing_name (deleted=? AND os_hidden=? AND name=?)",
        ),
        (
            [("limit", "25")],
            MARKER,
            "ix_images_listing (deleted=? AND os_hidden=? AND created_at<?)",
        ),
        (
            [("limit", "25"), ("sort_key", "created_at"), ("sort_dir", "asc")],
            MARKER,
            "ix_images_listing (deleted=? AND os_hidden=? AND created_at>?)",
        ),
    ],
    ids=["default", "created_at-desc", "name", "marker", "marker-asc"],
)
async def test_a_page_is_read_in_index_order(
    database: Database, params: list[tuple[str, str]], marker: Image | None, index_use: str
) -> None:
    plan = await plan_of(database, params, marker)
    assert f"SEARCH images USING INDEX {index_use}" in plan
    assert "TEMP B-TREE" not in plan  # no sort of the matching rows


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
