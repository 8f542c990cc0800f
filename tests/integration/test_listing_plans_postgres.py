"""PostgreSQL reads a list page's side rows (properties, tags, locations, memberships) by the
page's image ids, whatever the table's size: never by hashing a whole side table first.

PostgreSQL prices the subqueries of a page for every row its index scan could reach (it
costs the scan before its LIMIT), so on a table of some thousands of images it chose to hash
all image tags and properties once per page, a cost that grows with the table (a million
images: 35 ms of each list page). The tables here are seeded and analyzed so the planner sees
that many rows; on empty ones it would read the tiny side tables whole either way."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.domain.listing import parse_list_query
from statement_capture import selects_run

MEMBER = RequestContext(project_id="project-1", user_id="user-1", roles=frozenset({"member"}))
# A project that owns no image and is nobody's member: it sees the public images alone.
LONELY = RequestContext(project_id="project-9", user_id="user-9", roles=frozenset({"member"}))
IMAGES = 5_000
SIDE_TABLES = ("image_properties", "image_tags", "image_locations", "image_members")

# Images of five projects, a quarter each private, public, shared and community; properties
# and tags on a tenth, a location on each, and project-1 an accepted member of every shared one.
_SEED = (
    (
        "INSERT INTO images (id, name, status, visibility, owner, min_disk, min_ram, protected, "
        "os_hidden, created_at, deleted) "
        "SELECT 'image-' || n, 'image-' || n, 'active', "
        "(ARRAY['private', 'public', 'shared', 'community'])[n % 4 + 1], 'project-' || n % 5, "
        "0, 0, false, false, timestamp '2024-01-01' + n * interval '1 minute', false "
        "FROM generate_series(1, :count) AS n"
    ),
    (
        "INSERT INTO image_properties (image_id, name, value) "
        "SELECT 'image-' || n, 'os_distro', 'ubuntu' FROM generate_series(1, :count, 10) AS n"
    ),
    (
        "INSERT INTO image_tags (image_id, value) "
        "SELECT 'image-' || n, 'golden' FROM generate_series(1, :count, 10) AS n"
    ),
    (
        "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, attempts) "
        "SELECT 'image-' || n, 'file:///images/' || n, '{}', 'active', now(), 0 "
        "FROM generate_series(1, :count) AS n"
    ),
    (
        "INSERT INTO image_members (image_id, member, status, created_at, deleted) "
        "SELECT 'image-' || n, 'project-1', 'accepted', now(), false "
        "FROM generate_series(2, :count, 4) AS n"
    ),
)
_ANALYZE = f"ANALYZE images, {', '.join(SIDE_TABLES)}"


@pytest.fixture
async def seeded(database: Database) -> AsyncIterator[Database]:
    async with database.write() as session:
        for statement in _SEED:
            await session.execute(sa.text(statement), {"count": IMAGES})
        await session.execute(sa.text(_ANALYZE))
    yield database
    # The next test starts from empty tables: leave statistics that say so.
    async with database.write() as session:
        await session.execute(sa.text("DELETE FROM images"))  # its side rows go with it
        await session.execute(sa.text(_ANALYZE))


async def plan_of(
    database: Database, params: list[tuple[str, str]], *settings: str, ctx: RequestContext = MEMBER
) -> str:
    """EXPLAIN (VERBOSE) of the page statement a member's list runs, after `settings`."""
    with selects_run(database) as statements:
        async with database.read_connection() as connection:
            query = parse_list_query(params, default_limit=25, max_limit=1000)
            await ImageLookup(connection).page(ctx, query, None)
    [(statement, parameters)] = statements
    async with database.reader_engine.connect() as connection:
        for setting in settings:
            await connection.exec_driver_sql(setting)
        rows = await connection.exec_driver_sql(f"EXPLAIN (VERBOSE) {statement}", parameters)
        return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    "params",
    [[("limit", "25")], [("limit", "25"), ("name", "image-7")]],
    ids=["default", "name"],
)
async def test_a_page_hashes_no_side_table(seeded: Database, params: list[tuple[str, str]]) -> None:
    plan = await plan_of(seeded, params)
    assert "hashed SubPlan" not in plan


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_page_reads_side_rows_by_image(seeded: Database) -> None:
    """Where an index may serve (sequential scans priced out: the side tables here are small
    enough to read whole per row), each side table is searched by the page row's image id."""
    plan = await plan_of(seeded, [("limit", "25")], "SET enable_seqscan = off")
    assert re.search(r"Index (Only )?Scan Backward using ix_images_listing_owner on ", plan)
    for table in SIDE_TABLES:
        search = rf"Index Cond: \(+{table}\.image_id(\)::text)? = \(images\.id\)::text"
        assert re.search(search, plan), f"{table} is not searched by image:\n{plan}"
    assert "hashed SubPlan" not in plan


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("ctx", [MEMBER, LONELY], ids=["member", "nobodys-member"])
async def test_a_project_page_merges_its_parts_each_read_in_order(
    seeded: Database, ctx: RequestContext
) -> None:
    """The caller's own images and the others' it may see, each part read backwards from its
    index and stopped at the page's limit, merged in order, the page's images then read by
    id: no part is read whole, nor sorted, however many images the caller may not see."""
    plan = await plan_of(seeded, [("limit", "25")], ctx=ctx)
    lines = [line.strip().removeprefix("->  ") for line in plan.splitlines()]
    nodes = [line.split("  (cost=")[0] for line in lines if "  (cost=" in line]
    assert "Merge Append" in nodes, plan
    scans = [
        (index, node)
        for index, node in enumerate(nodes)
        if re.fullmatch(r"Index (Only )?Scan Backward using ix_images_listing_\w+ on .*", node)
    ]
    assert [node.split(" using ")[1].split()[0] for _, node in scans] == [
        "ix_images_listing_owner",
        "ix_images_listing_visibility",
        "ix_images_listing_visibility",
    ], plan
    # Each part a Limit straight over its index scan; the shared images' searched for
    # 'shared' only if the caller is anyone's member at all (asked once), else for NULL.
    assert [nodes[index - 1] for index, _ in scans[:2]] == ["Limit", "Limit"], plan
    assert "Limit" in nodes[scans[2][0] - 3 : scans[2][0]], plan  # the ask between them
    shared = next(index for index, line in enumerate(lines) if line.startswith(scans[2][1]))
    condition = next(line for line in lines[shared:] if line.startswith("Index Cond:"))
    assert re.search(r"visibility\)::text = \(CASE WHEN \$\d+ THEN 'shared'", condition), plan
    assert any(n.startswith("Index Scan using images_pkey on public.images") for n in nodes), plan
    assert not [n for n in nodes if n.startswith(("Sort", "Bitmap", "Seq Scan on public.images"))]
