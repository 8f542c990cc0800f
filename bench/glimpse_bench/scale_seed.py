"""`BENCH=scale` data: image rows written straight into a migrated database, in big batches.

The rows are what a busy cloud holds: owners spread over a few projects, a visibility mix
with public images rare (one in PUBLIC_EVERY), some shared images with their member rows,
properties and tags on some, a location on each image with data (as a store's upload leaves
it), a few deleted or hidden, and one name many images share (the name filter's). One more
project, LONELY, owns only LONELY_IMAGES images spread over the whole list and is a member of
none: it sees little besides them, so its list walks far down the index between rows it may
see. Everything follows from SEED, so two runs seed the same rows.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from glimpse_bench.common import SEED

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PROJECTS: Final = tuple(f"project-{index}" for index in range(5))
VIEWER: Final = PROJECTS[1]  # the project whose member lists and shows
LONELY: Final = "project-lonely"  # owns LONELY_IMAGES images, a member of none
LONELY_IMAGES: Final = 20
PUBLIC_EVERY: Final = 1000  # one image in this many is public, at PUBLIC_EVERY // 2 of each run
COMMON_NAME: Final = "ubuntu-24.04-server"  # one image in COMMON_EVERY has it
COMMON_EVERY: Final = 21  # not a multiple of len(PROJECTS): every project owns some
MARKER_DEPTH: Final = 0.9  # the marker sits this far down the default (newest first) list
BATCH: Final = 20_000
_START: Final = datetime(2021, 1, 1)  # noqa: DTZ001 -- the columns hold naive UTC
# Public images are placed (PUBLIC_EVERY), not drawn: a 5,000-image table holds its five.
_VISIBILITIES: Final = (("private", 55), ("shared", 15), ("community", 30))
_SQLITE_TIME: Final = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DateTime text on SQLite

IMAGE_COLUMNS: Final = (
    "id",
    "name",
    "size",
    "virtual_size",
    "status",
    "visibility",
    "disk_format",
    "container_format",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "min_disk",
    "min_ram",
    "protected",
    "os_hidden",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
)
MEMBER_COLUMNS: Final = ("image_id", "member", "status", "created_at", "deleted")
PROPERTY_COLUMNS: Final = ("image_id", "name", "value")
TAG_COLUMNS: Final = ("image_id", "value")
LOCATION_COLUMNS: Final = ("image_id", "value", "meta_data", "status", "created_at")
TABLES: Final = ("images", "image_members", "image_properties", "image_tags", "image_locations")
# What the file store's upload writes for an image (image_data: the store's name).
_LOCATION_METADATA: Final = json.dumps({"store": "file"})
_LOCATION_DIRECTORY: Final = "file:///var/lib/glance/images/"


@dataclass
class Batch:
    images: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[tuple[Any, ...]] = field(default_factory=list)
    properties: list[tuple[Any, ...]] = field(default_factory=list)
    tags: list[tuple[Any, ...]] = field(default_factory=list)
    locations: list[tuple[Any, ...]] = field(default_factory=list)

    def tables(self) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        """(table, columns, rows) in the order the foreign keys want."""
        return [
            ("images", IMAGE_COLUMNS, self.images),
            ("image_members", MEMBER_COLUMNS, self.members),
            ("image_properties", PROPERTY_COLUMNS, self.properties),
            ("image_tags", TAG_COLUMNS, self.tags),
            ("image_locations", LOCATION_COLUMNS, self.locations),
        ]


@dataclass
class Seeded:
    """What the measurements need to know about the rows: ids the viewer may show, a marker
    deep in its default list, and LONELY's images."""

    count: int
    seconds: float = 0.0
    shown: list[str] = field(default_factory=list)
    marker: str = ""
    lonely: list[str] = field(default_factory=list)


def _visibility(rng: random.Random) -> str:
    draw = rng.randrange(100)
    for visibility, share in _VISIBILITIES:
        if draw < share:
            return visibility
        draw -= share
    return "private"


def lonely_indexes(count: int) -> set[int]:
    """Where LONELY's images sit: evenly over the list, never on a public image's place."""
    spacing = count // LONELY_IMAGES
    public = set(range(PUBLIC_EVERY // 2, count, PUBLIC_EVERY))
    return {spacing // 2 + spacing * n for n in range(LONELY_IMAGES)} - public


def _add_side_rows(
    batch: Batch,
    rng: random.Random,
    *,
    index: int,
    image_id: str,
    visibility: str,
    status: str,
    created: datetime,
) -> None:
    """The image's member, property, tag and location rows."""
    if visibility == "shared":
        member = PROJECTS[(index + 1 + rng.randrange(len(PROJECTS) - 1)) % len(PROJECTS)]
        answer = rng.choice(("accepted", "accepted", "pending", "rejected"))
        batch.members.append((image_id, member, answer, created, False))
    if index % 10 == 3:
        batch.properties.extend(
            (image_id, key, value)
            for key, value in (
                ("os_distro", "ubuntu"),
                ("os_version", f"24.04.{index % 7}"),
                ("hw_disk_bus", "virtio"),
            )
        )
    if index % 20 == 7:
        batch.tags.extend([(image_id, "golden"), (image_id, f"build-{index % 50}")])
    if status in {"active", "deactivated"}:  # the images with data
        url = f"{_LOCATION_DIRECTORY}{image_id}"
        batch.locations.append((image_id, url, _LOCATION_METADATA, "active", created))


def batches(count: int, seeded: Seeded) -> Iterator[Batch]:
    """The rows, oldest first; created_at grows with the index, two images per second so the
    id breaks ties."""
    rng = random.Random(SEED)
    marker_index = int(count * (1 - MARKER_DEPTH))
    lonely = lonely_indexes(count)
    batch = Batch()
    for index in range(count):
        image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        owner = LONELY if index in lonely else PROJECTS[index % len(PROJECTS)]
        visibility = _visibility(rng)
        # Placed images (public, LONELY's) are live and listed: the 5,000-image table holds
        # a full page of what LONELY sees, and no more.
        public = index % PUBLIC_EVERY == PUBLIC_EVERY // 2
        placed = public or index in lonely
        visibility = "public" if public else visibility
        created = _START + timedelta(seconds=index // 2 * 60)
        deleted = rng.random() < 0.05 and not placed
        hidden = rng.random() < 0.02 and not placed
        status = "deleted" if deleted else rng.choice(("active",) * 18 + ("queued", "deactivated"))
        status = "active" if placed else status
        size = rng.randrange(10**6, 10**10)
        digest = rng.getrandbits(512).to_bytes(64, "big").hex()
        name = COMMON_NAME if index % COMMON_EVERY == 0 else f"image-{index:07d}"
        batch.images.append(
            (
                image_id,
                name,
                size,
                size * 2,
                status,
                visibility,
                "qcow2",
                "bare",
                digest[:32],
                "sha512",
                digest,
                owner,
                rng.randrange(0, 40),
                rng.randrange(0, 8192),
                False,
                hidden,
                created,
                created + timedelta(seconds=rng.randrange(1, 3600)),
                created + timedelta(days=1) if deleted else None,
                deleted,
            )
        )
        _add_side_rows(
            batch,
            rng,
            index=index,
            image_id=image_id,
            visibility=visibility,
            status=status,
            created=created,
        )
        if owner == LONELY:
            seeded.lonely.append(image_id)
        mine = owner == VIEWER and not deleted and not hidden
        if mine and not seeded.marker and index >= marker_index:
            seeded.marker = image_id
        if mine and rng.random() < 0.01 and len(seeded.shown) < 1000:
            seeded.shown.append(image_id)
        if len(batch.images) >= BATCH:
            yield batch
            batch = Batch()
    if batch.images:
        yield batch


def _insert(columns: tuple[str, ...], table: str) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 -- constants


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.strftime(_SQLITE_TIME)
    return value


def _sqlite_rows(rows: list[tuple[Any, ...]]) -> Iterator[tuple[object, ...]]:
    return (tuple(_sqlite_value(value) for value in row) for row in rows)


def seed_sqlite(path: Path, count: int) -> Seeded:
    """One transaction without a journal (the file is thrown away if seeding fails); the
    migrations' secondary indexes are dropped first and made again from their own SQL after
    the load, which sorts once instead of inserting into each index row by row."""
    seeded = Seeded(count)
    started = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes stay in memory
        connection.execute("BEGIN")
        indexes = [
            (name, sql)
            for name, sql, table in connection.execute(
                "SELECT name, sql, tbl_name FROM sqlite_master "
                "WHERE type = 'index' AND sql IS NOT NULL"
            )
            if table in TABLES
        ]
        for name, _sql in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        for batch in batches(count, seeded):
            for table, columns, rows in batch.tables():
                connection.executemany(_insert(columns, table), _sqlite_rows(rows))
        for _name, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
    finally:
        connection.close()
    seeded.seconds = time.perf_counter() - started
    return seeded


async def seed_postgresql(url: str, count: int) -> Seeded:
    """COPY in one transaction, then ANALYZE (as autovacuum would soon after such a load)."""
    seeded = Seeded(count)
    started = time.perf_counter()
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            # As on SQLite: the secondary indexes (not those behind constraints) are made
            # again after the load, from their own definitions.
            indexes = await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename = ANY($1::text[]) AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint)",
                list(TABLES),
            )
            for index in indexes:
                await connection.execute(f'DROP INDEX "{index["indexname"]}"')
            for batch in batches(count, seeded):
                for table, columns, rows in batch.tables():
                    if rows:
                        await connection.copy_records_to_table(
                            table, records=rows, columns=list(columns)
                        )
            for index in indexes:
                await connection.execute(index["indexdef"])
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    seeded.seconds = time.perf_counter() - started
    return seeded
