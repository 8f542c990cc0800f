"""All queries on images, their properties, tags and locations. Never commits."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from glimpse.context import RequestContext
from glimpse.db.core import table_of
from glimpse.db.repositories.image_status import ImageStatusWrites
from glimpse.db.tables import Image, ImageLocation, ImageMember, ImageProperty, ImageTag, utcnow
from glimpse.domain.images import ImageStatus, LocationStatus, Visibility
from glimpse.domain.listing import ListQuery, Op, SortDir
from glimpse.domain.tasks import IMPORT_LOCK

_IMAGE = table_of(Image)
_PROPS = table_of(ImageProperty)
_TAGS = table_of(ImageTag)
_LOCS = table_of(ImageLocation)
_MEMBERS = table_of(ImageMember)

# NULL sorts differently on SQLite and PostgreSQL; compare these stand-ins instead so paging is
# identical on both.
_NULL_STANDINS: dict[str, Any] = {
    "name": "",
    "disk_format": "",
    "container_format": "",
    "owner": "",
    "size": -1,
    "virtual_size": -1,
    "updated_at": sa.literal("1970-01-01 00:00:00").cast(sa.DateTime),
}


# The statements every list and write runs, built once: building a select costs more CPU than
# SQLite takes to run it (the compiled form is cached either way).
_LIVE_IMAGE = sa.select(Image).where(
    _IMAGE.c.id == sa.bindparam("image_id"), _IMAGE.c.deleted.is_(False)
)
_LIVE_IMAGE_LOCKED = _LIVE_IMAGE.with_for_update()
_ID_USED = (
    sa.select(sa.func.count()).select_from(_IMAGE).where(_IMAGE.c.id == sa.bindparam("image_id"))
)
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
# Properties and tags in one round trip (each statement is a hop to the driver); also the
# show's (image_lookup).
PROPERTIES_AND_TAGS = sa.union_all(
    sa.select(
        sa.literal(0).label("kind"), _PROPS.c.image_id, _PROPS.c.name, _PROPS.c.value, _PROPS.c.id
    ).where(_PROPS.c.image_id.in_(_IDS)),
    sa.select(
        sa.literal(1).label("kind"), _TAGS.c.image_id, sa.literal(""), _TAGS.c.value, _TAGS.c.id
    ).where(_TAGS.c.image_id.in_(_IDS)),
).order_by("kind", "id")
# In order by id once read (as image_lookup's: an ORDER BY makes SQLite read them by status).
_ACTIVE_LOCATIONS = sa.select(ImageLocation).where(
    _LOCS.c.image_id.in_(_IDS), _LOCS.c.status == LocationStatus.ACTIVE
)


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image row with everything the API shows about it."""

    image: Image
    properties: dict[str, str]
    tags: list[str]
    locations: list[ImageLocation]
    # Whether the caller passed `get_image_location`, decided by the image service: until then
    # a view shows no location (show_multiple_locations, show_image_direct_url).
    locations_visible: bool = False


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    image_count: int
    image_bytes: int
    staged_bytes: int
    uploading_count: int


def _sort_expression(key: str) -> ColumnElement[Any]:
    column = _IMAGE.c[key]
    if key in _NULL_STANDINS:
        return sa.func.coalesce(column, _NULL_STANDINS[key])
    return column


_OPS = {
    Op.EQ: lambda c, v: c == v,
    Op.NEQ: lambda c, v: c != v,
    Op.GT: lambda c, v: c > v,
    Op.GTE: lambda c, v: c >= v,
    Op.LT: lambda c, v: c < v,
    Op.LTE: lambda c, v: c <= v,
}


# The caller's project in a page statement (also image_lookup's membership column).
PROJECT = sa.bindparam("project", type_=sa.String)


def _a_member(member_status: str) -> ColumnElement[bool]:
    """The caller is a member of the listed image, with an answer matching `member_status`."""
    # A scalar subquery rather than EXISTS: PostgreSQL may answer an EXISTS under OR by
    # hashing all the project's memberships first, a cost that grows with the table, where
    # this looks up only the rows a page reads (by image_id, member).
    membership = [
        _MEMBERS.c.image_id == _IMAGE.c.id,
        _MEMBERS.c.member == PROJECT,
        _MEMBERS.c.deleted.is_(False),
    ]
    if member_status != "all":
        membership.append(_MEMBERS.c.status == member_status)
    member_row = sa.select(_MEMBERS.c.id).where(*membership).limit(1)
    return member_row.scalar_subquery().is_not(None)


def _shared_with_me(member_status: str) -> ColumnElement[bool]:
    return sa.and_(_IMAGE.c.visibility == Visibility.SHARED, _a_member(member_status))


@functools.lru_cache(maxsize=64)
def _readable(
    is_admin: bool, has_project: bool, member_status: str, visibility: str | None
) -> ColumnElement[bool]:
    """Visibility in SQL, as Glance lists: what the caller may see at all (admins everything;
    others public and community images, their own, and shared images whose membership
    answer matches `member_status`), narrowed by the `visibility` filter. Built once per
    combination (the caller's project is the `project` parameter): building it per request
    cost more than SQLite's run of the page."""
    owned: ColumnElement[bool] = _IMAGE.c.owner == PROJECT if has_project else sa.false()
    if is_admin:
        seen: ColumnElement[bool] = sa.true()
    else:
        shared_with_me = _shared_with_me(member_status) if has_project else sa.false()
        seen = sa.or_(
            _IMAGE.c.visibility.in_([Visibility.PUBLIC, Visibility.COMMUNITY]),
            owned,
            shared_with_me,
        )
    if visibility == "all":
        return seen
    if visibility is not None:
        return sa.and_(seen, _IMAGE.c.visibility == visibility)
    # The default list leaves out other projects' community images.
    return sa.and_(seen, sa.or_(owned, _IMAGE.c.visibility != Visibility.COMMUNITY))


@functools.lru_cache(maxsize=64)
def _readable_parts(
    has_project: bool, member_status: str, visibility: str | None
) -> tuple[ColumnElement[bool], ...]:
    """What a caller who is not an admin may list with `visibility` (the rows of _readable)
    as disjoint parts, each a set one index reads in created_at order: the caller's own
    images by owner, the others' public, community or shared ones by visibility. A list
    page that merges the parts' first rows finds its page without walking every image the
    caller may not see, however few it sees among however many."""
    if visibility not in {None, "all", Visibility.SHARED}:
        return ()  # one part: _readable's
    others_seen = [Visibility.PUBLIC, Visibility.COMMUNITY] if visibility == "all" else []
    if visibility is None:
        others_seen = [Visibility.PUBLIC]  # others' community images only when asked
    if not has_project:
        return tuple(_IMAGE.c.visibility == seen for seen in others_seen)
    owned = _IMAGE.c.owner == PROJECT
    others = sa.or_(_IMAGE.c.owner.is_(None), _IMAGE.c.owner != PROJECT)
    # Whether the project is anyone's member (with that answer), asked once, as the value
    # the shared images' index is searched for: 'shared' if so, else NULL, which both
    # databases search for nothing, so a project that is nobody's member skips the shared
    # images whole (as a plain condition, SQLite would still test each shared image). By
    # member alone (deleted ones too: it only gates the lookups): with `deleted` SQLite
    # would read every live membership through that index instead.
    any_membership = sa.exists().where(
        _MEMBERS.c.member == PROJECT,
        *([] if member_status == "all" else [_MEMBERS.c.status == member_status]),
    )
    shared_if_a_member = sa.case((any_membership, sa.literal(Visibility.SHARED.value)))
    shared = sa.and_(_IMAGE.c.visibility == shared_if_a_member, others, _a_member(member_status))
    if visibility == Visibility.SHARED:
        return (sa.and_(owned, _IMAGE.c.visibility == Visibility.SHARED), shared)
    return (owned, *(sa.and_(_IMAGE.c.visibility == v, others) for v in others_seen), shared)


# `= false`, not `IS false`: PostgreSQL matches only `=` against an index (ix_images_listing
# leads with deleted and os_hidden, the two conditions every list has).
_LIVE = _IMAGE.c.deleted == sa.false()
_HIDDEN = {True: _IMAGE.c.os_hidden == sa.true(), False: _IMAGE.c.os_hidden == sa.false()}
_ORDER = {
    (c.key, way): _sort_expression(c.key).asc()
    if way is SortDir.ASC
    else _sort_expression(c.key).desc()
    for c in _IMAGE.c
    for way in SortDir
}


class ImageRepository(ImageStatusWrites):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, image_id: str, *, lock: bool = False) -> Image | None:
        """A live (not deleted) image; `lock` takes a row lock where the database has them."""
        statement = _LIVE_IMAGE_LOCKED if lock else _LIVE_IMAGE
        result = await self.session.execute(statement, {"image_id": image_id})
        return result.scalar_one_or_none()

    async def exists_any(self, image_id: str) -> bool:
        """True if the id was ever used, deleted images included (ids are never reused)."""
        result = await self.session.execute(_ID_USED, {"image_id": image_id})
        return bool(result.scalar_one())

    async def record(self, image: Image) -> ImageRecord:
        return (await self.records([image]))[0]

    async def records(
        self, images: Sequence[Image], *, extras: bool = True, locations: bool = True
    ) -> list[ImageRecord]:
        """Load properties, tags and locations for many images in two queries; `extras` or
        `locations` false: the caller knows there are none of those."""
        ids = [image.id for image in images]
        if not ids:
            return []
        props: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, list[str]] = defaultdict(list)
        if extras:
            for kind, image_id, name, value, _id in await self.session.execute(
                PROPERTIES_AND_TAGS, {"ids": ids}
            ):
                if kind == 0:
                    props[image_id][name] = value
                else:
                    tags[image_id].append(value)
        found: dict[str, list[ImageLocation]] = defaultdict(list)
        if locations:
            location_rows = await self.session.execute(_ACTIVE_LOCATIONS, {"ids": ids})
            for location in sorted(location_rows.scalars(), key=attrgetter("id")):
                found[location.image_id].append(location)
        return [
            ImageRecord(image, props[image.id], tags[image.id], found[image.id]) for image in images
        ]

    async def add(self, image: Image, properties: dict[str, str], tags: list[str]) -> None:
        """A new image: nothing to replace, so its properties and tags are only inserted."""
        self.session.add(image)
        await self.session.flush()
        await self._insert_properties(image.id, properties)
        await self._insert_tags(image.id, tags)

    async def replace_properties(self, image_id: str, properties: dict[str, str]) -> None:
        await self.session.execute(sa.delete(_PROPS).where(_PROPS.c.image_id == image_id))
        await self._insert_properties(image_id, properties)

    async def _insert_properties(self, image_id: str, properties: dict[str, str]) -> None:
        if properties:
            await self.session.execute(
                sa.insert(_PROPS),
                [{"image_id": image_id, "name": k, "value": v} for k, v in properties.items()],
            )

    async def replace_tags(self, image_id: str, tags: list[str]) -> None:
        await self.session.execute(sa.delete(_TAGS).where(_TAGS.c.image_id == image_id))
        await self._insert_tags(image_id, tags)

    async def _insert_tags(self, image_id: str, tags: list[str]) -> None:
        if tags:
            await self.session.execute(
                sa.insert(_TAGS), [{"image_id": image_id, "value": tag} for tag in tags]
            )

    async def set_properties(self, image_id: str, values: dict[str, str | None]) -> None:
        """Set some properties (an empty string is a value) and remove those given as None,
        leaving the others alone."""
        await self.session.execute(
            sa.delete(_PROPS).where(_PROPS.c.image_id == image_id, _PROPS.c.name.in_(values))
        )
        rows = [
            {"image_id": image_id, "name": k, "value": v}
            for k, v in values.items()
            if v is not None
        ]
        if rows:
            await self.session.execute(sa.insert(_PROPS), rows)

    async def properties(self, image_id: str) -> dict[str, str]:
        rows = await self.session.execute(
            sa.select(_PROPS.c.name, _PROPS.c.value).where(_PROPS.c.image_id == image_id)
        )
        return {name: value for name, value in rows}  # noqa: C416 -- rows are Row objects

    async def touch(self, image: Image) -> None:
        image.updated_at = utcnow()
        await self.session.flush()

    async def uploads_in_progress(self, image_ids: set[str], now: datetime) -> set[str]:
        """Those of these images an upload is writing under a live lease."""
        statement = sa.select(_IMAGE.c.id).where(
            _IMAGE.c.id.in_(image_ids),
            _IMAGE.c.status == ImageStatus.SAVING,
            _IMAGE.c.upload_lease_until >= now,
        )
        return set((await self.session.execute(statement)).scalars())

    async def add_location(self, image_id: str, url: str, metadata: dict[str, str]) -> None:
        self.session.add(ImageLocation(image_id=image_id, value=url, meta_data=metadata))
        await self.session.flush()

    async def rewrite_legacy_locations(self, image_ids: Sequence[str]) -> int:
        """Rename the pre-Train `backend` metadata key to `store` in these images' locations."""
        rows = await self.session.execute(
            sa.select(ImageLocation).where(_LOCS.c.image_id.in_(image_ids))
        )
        rewritten = 0
        for location in rows.scalars():
            if location.has_legacy_metadata:
                location.meta_data = location.normalized_metadata()
                rewritten += 1
        await self.session.flush()
        return rewritten

    async def with_data_in_flight(self, image_ids: set[str], *, saving: bool = False) -> set[str]:
        """Those of these images whose staged data is still wanted: uploading or importing,
        or holding an import lock (copy-image works on an active image); with `saving`, also
        those a direct upload is writing to a store."""
        statuses = [ImageStatus.UPLOADING, ImageStatus.IMPORTING]
        if saving:
            statuses.append(ImageStatus.SAVING)
        locked = sa.select(_PROPS.c.image_id).where(_PROPS.c.name == IMPORT_LOCK)
        statement = sa.select(_IMAGE.c.id).where(
            _IMAGE.c.id.in_(image_ids),
            _IMAGE.c.deleted.is_(False),
            sa.or_(_IMAGE.c.status.in_(statuses), _IMAGE.c.id.in_(locked)),
        )
        return set((await self.session.execute(statement)).scalars())

    async def usage(self, owner: str | None) -> ProjectUsage:
        """One project's images: how many, bytes stored, and what is being staged."""
        in_flight = _IMAGE.c.status.in_([ImageStatus.UPLOADING, ImageStatus.IMPORTING])
        statement = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(_IMAGE.c.size), 0),
            sa.func.coalesce(sa.func.sum(sa.case((in_flight, _IMAGE.c.size), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((in_flight, 1), else_=0)), 0),
        ).where(_IMAGE.c.owner == owner, _IMAGE.c.deleted.is_(False))
        count, size, staged, uploading = (await self.session.execute(statement)).one()
        return ProjectUsage(int(count), int(size), int(staged), int(uploading))

    async def location_in_use(self, url: str, *, exclude_image: str) -> bool:
        """True if another image holds `url` in a location that may still be read: active, or
        pending_delete (its image may yet be restored)."""
        statement = sa.select(sa.func.count()).where(
            _LOCS.c.value == url,
            _LOCS.c.status.in_([LocationStatus.ACTIVE, LocationStatus.PENDING_DELETE]),
            _LOCS.c.image_id != exclude_image,
        )
        return bool((await self.session.execute(statement)).scalar_one())

    async def drop_location(self, location: ImageLocation) -> None:
        """Take a location off its image, leaving its data where it is (data the image was
        pointed at, never written by this service)."""
        location.status = LocationStatus.DELETED
        location.updated_at = utcnow()
        await self.session.flush()

    async def set_location_metadata(
        self, location: ImageLocation, metadata: dict[str, str]
    ) -> None:
        """New metadata for a kept location; the store holding its data stays as it was."""
        store_id = location.store_id
        updated = {key: value for key, value in metadata.items() if key != "store"}
        if store_id is not None:
            updated["store"] = store_id
        if updated != location.normalized_metadata():
            location.meta_data = updated
            location.updated_at = utcnow()
            await self.session.flush()

    async def retire_location(self, location: ImageLocation, *, request_id: str | None) -> None:
        """Take a location off its image; the caller claims its data for deletion."""
        location.status = LocationStatus.DELETING
        location.request_id = request_id
        location.updated_at = utcnow()
        await self.session.flush()


def page_statement(
    ctx: RequestContext, query: ListQuery, marker: Image | None, columns: sa.Select[Any]
) -> sa.Select[Any]:
    """`columns` (a select of what to read, built once) narrowed to the page of `query` after
    `marker`, as `ctx` may see it; run with page_parameters(ctx)."""
    readable = (ctx.is_admin, bool(ctx.project_id), query.member_status, query.visibility)
    if marker is None and _unfiltered(query):
        # The usual page, the same statement object each time: building it, and then its
        # cache key, cost more than SQLite's run of it.
        return _plain_page(columns, readable, query.sort, query.os_hidden, query.limit)
    filters = _filter_conditions(query)
    return _page(
        columns,
        readable,
        filters,
        query.sort,
        marker=marker,
        limit=query.limit,
        by_name="name" in query.columns,
    )


def _unfiltered(query: ListQuery) -> bool:
    return not (
        query.columns
        or query.properties
        or query.tags
        or query.times
        or query.size_min is not None
        or query.size_max is not None
        or query.protected is not None
    )


@functools.lru_cache(maxsize=256)
def _plain_page(
    columns: sa.Select[Any],
    readable: tuple[bool, bool, str, str | None],
    sort: tuple[tuple[str, SortDir], ...],
    os_hidden: bool,
    limit: int,
) -> sa.Select[Any]:
    return _page(columns, readable, [_HIDDEN[os_hidden]], sort, marker=None, limit=limit)


def _page(
    columns: sa.Select[Any],
    readable: tuple[bool, bool, str, str | None],
    filters: list[ColumnElement[bool]],
    sort_keys: tuple[tuple[str, SortDir], ...],
    *,
    marker: Image | None,
    limit: int,
    by_name: bool = False,
) -> sa.Select[Any]:
    conditions = list(filters)
    # created_at and id break ties so every page boundary is well defined.
    sort = list(sort_keys)
    keys = {key for key, _ in sort}
    for key in ("created_at", "id"):
        if key not in keys:
            sort.append((key, sort[-1][1] if sort else SortDir.DESC))
    if marker is not None:
        conditions.append(_after_marker(sort, marker))
    is_admin, has_project, member_status, visibility = readable
    # A name filter reads its own index (ix_images_listing_name), in order, better than the
    # parts would theirs: they would walk their images for the few of that name.
    split = not (is_admin or by_name)
    parts = _readable_parts(has_project, member_status, visibility) if split else ()
    if len(parts) > 1:
        return _merged_page(columns, list(parts), conditions, sort, limit)
    order = [_ORDER[key, way] for key, way in sort]
    return columns.where(_LIVE, _readable(*readable), *conditions).order_by(*order).limit(limit)


def _merged_page(
    columns: sa.Select[Any],
    parts: list[ColumnElement[bool]],
    conditions: list[ColumnElement[bool]],
    sort: list[tuple[str, SortDir]],
    limit: int,
) -> sa.Select[Any]:
    """The page from the first `limit` images of each (disjoint) visibility part, each part
    read in order from its index and stopped at its own limit, then sorted together (at most
    `limit` per part) and cut to the page; `columns` are read for the page's images alone
    (the flags' and membership's subqueries run for its rows, not every part's).
    The limit is the parts' own, not left to a merge of the parts: PostgreSQL appends a
    union's parts whole before sorting them. Each part gives its images' ids and sort keys."""
    order = [_ORDER[key, way] for key, way in sort]
    keys = [sa.label(f"sort_{index}", _sort_expression(key)) for index, (key, _) in enumerate(sort)]
    arms = [
        sa.select(_IMAGE.c.id, *keys)
        .where(_LIVE, part, *conditions)
        .order_by(*order)
        .limit(limit)
        .subquery(f"part_{index}")
        for index, part in enumerate(parts)
    ]
    merged = sa.union_all(*(sa.select(*arm.c) for arm in arms)).subquery("parts")
    page = (
        sa.select(*merged.c)
        .order_by(*_keyed_order(merged, keys, sort))
        .limit(limit)
        .subquery("page")
    )
    images = page.join(_IMAGE, _IMAGE.c.id == page.c.id)
    return columns.select_from(images).order_by(*_keyed_order(page, keys, sort))


def _keyed_order(
    rows: sa.Subquery, keys: list[sa.Label[Any]], sort: list[tuple[str, SortDir]]
) -> list[sa.UnaryExpression[Any]]:
    """The page's order by the sort keys `rows` carry (as `keys`)."""
    return [
        rows.c[key.name].asc() if way is SortDir.ASC else rows.c[key.name].desc()
        for key, (_, way) in zip(keys, sort, strict=True)
    ]


def page_parameters(ctx: RequestContext) -> dict[str, Any]:
    """The parameters of a page_statement: the caller's project, when it has one."""
    return {"project": ctx.project_id} if ctx.project_id else {}


def _filter_conditions(query: ListQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        _IMAGE.c[column].in_(values) for column, values in query.columns.items()
    ]
    conditions.extend(
        sa.exists().where(
            _PROPS.c.image_id == _IMAGE.c.id, _PROPS.c.name == name, _PROPS.c.value.in_(values)
        )
        for name, values in query.properties.items()
    )
    conditions.extend(
        sa.exists().where(_TAGS.c.image_id == _IMAGE.c.id, _TAGS.c.value == tag)
        for tag in query.tags
    )
    if query.size_min is not None:
        conditions.append(_IMAGE.c.size >= query.size_min)
    if query.size_max is not None:
        conditions.append(_IMAGE.c.size <= query.size_max)
    if query.protected is not None:
        conditions.append(_IMAGE.c.protected.is_(query.protected))
    # Hidden images are listed only when asked for, and then only they are.
    conditions.append(_HIDDEN[bool(query.os_hidden)])
    conditions.extend(_OPS[f.op](_IMAGE.c[f.column], f.value) for f in query.times)
    return conditions


def _marker_value(key: str, marker: Image) -> Any:  # noqa: ANN401 -- any column type
    value = getattr(marker, key)
    if value is None and key in _NULL_STANDINS:
        return _NULL_STANDINS[key]
    return value


def _bound_marker_value(key: str, marker: Image) -> ColumnElement[Any]:
    value = _marker_value(key, marker)
    if isinstance(value, sa.ClauseElement):
        return value  # type: ignore[return-value]
    # Bound as a typed value: SQLAlchemy refuses `>` against a bare True/False.
    return sa.literal(value, _sort_expression(key).type)


def _after_marker(sort: list[tuple[str, SortDir]], marker: Image) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after `marker` in the (mixed-direction) sort order.

    Nested as k1 beyond OR (k1 = v1 AND (k2 beyond OR (k2 = v2 AND ...))), so it grows
    linearly with the number of keys (the flat OR of prefixes grows quadratically)."""
    condition: ColumnElement[bool] | None = None
    for key, direction in reversed(sort):
        expression, value = _sort_expression(key), _bound_marker_value(key, marker)
        beyond = expression > value if direction is SortDir.ASC else expression < value
        condition = (
            beyond if condition is None else sa.or_(beyond, sa.and_(expression == value, condition))
        )
    assert condition is not None  # noqa: S101 -- page() always sorts by created_at and id
    # The same rows, plus a plain range on the first key: the one part of the condition an
    # index on that key can start from (the ORs alone make a database read every row before
    # the marker to test them).
    first, direction = sort[0]
    expression, value = _sort_expression(first), _bound_marker_value(first, marker)
    not_before = expression >= value if direction is SortDir.ASC else expression <= value
    return sa.and_(not_before, condition)
