"""Shown and listed images read with Core statements on a plain connection, without a session.

A show or a list page reads rows and writes nothing, yet an ORM session costs it more CPU than
the statements themselves (its begin and commit, the identity map, each row's loading). The
rows come back as detached Image and ImageLocation objects, built as the ORM's loading builds
them (its constructor, then the column values straight into the instance's dict). Each image
row also says whether properties or tags, and active locations, hang on it, so an image
without any (most of them until uploaded) takes no further statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from glimpse.context import RequestContext
from glimpse.db.core import table_of
from glimpse.db.direct_sqlite import DirectConnection
from glimpse.db.repositories.images import (
    PROJECT,
    PROPERTIES_AND_TAGS,
    ImageRecord,
    page_parameters,
    page_statement,
)
from glimpse.db.tables import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glimpse.domain.images import LocationStatus, Visibility
from glimpse.domain.listing import ListQuery

_Model = TypeVar("_Model", bound=SQLModel)

_IMAGE = table_of(Image)
_PROPS = table_of(ImageProperty)
_TAGS = table_of(ImageTag)
_LOCS = table_of(ImageLocation)
_MEMBERS = table_of(ImageMember)


def _columns(model: type[SQLModel]) -> tuple[list[str], list[sa.ColumnElement[Any]]]:
    """The attribute names and columns of a table model, in the same order."""
    attributes = sa.inspect(model).column_attrs
    return [a.key for a in attributes], [a.columns[0] for a in attributes]


IMAGE_KEYS, _IMAGE_COLUMNS = _columns(Image)
_LOCATION_KEYS, _LOCATION_COLUMNS = _columns(ImageLocation)
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)


def _any_row(*conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """Whether a row matches `conditions`, as a scalar subquery rather than EXISTS: PostgreSQL
    plans a list page's EXISTS for every row the index scan could reach (it prices the scan
    before its LIMIT) and so may hash the whole table once per page (a cost that grows with
    the table), where a scalar subquery is never hashed: it runs for the page's rows alone."""
    return (
        sa.select(sa.literal_column("1")).where(*conditions).limit(1).scalar_subquery().is_not(None)
    )


# Whether properties or tags (one flag) and active locations hang on the image.
_FLAGS = (
    sa.or_(
        _any_row(_PROPS.c.image_id == _IMAGE.c.id),
        _any_row(_TAGS.c.image_id == _IMAGE.c.id),
    ),
    _any_row(_LOCS.c.image_id == _IMAGE.c.id, _LOCS.c.status == LocationStatus.ACTIVE),
)
_SHOWN = sa.select(*_IMAGE_COLUMNS, *_FLAGS).where(
    _IMAGE.c.id == sa.bindparam("image_id"), _IMAGE.c.deleted.is_(False)
)
_LIVE_IMAGE = sa.select(*_IMAGE_COLUMNS).where(
    _IMAGE.c.id == sa.bindparam("image_id"), _IMAGE.c.deleted.is_(False)
)
# A listed image's row: with the caller's live membership status on it (policy reads it), as
# a column rather than one more statement; a caller without a project has none.
_MEMBERSHIP_OF_ROW = (
    sa.select(_MEMBERS.c.status)
    .where(
        _MEMBERS.c.image_id == _IMAGE.c.id,
        _MEMBERS.c.member == PROJECT,
        _MEMBERS.c.deleted.is_(False),
    )
    .limit(1)
    .scalar_subquery()
)
_LISTED = {
    True: sa.select(*_IMAGE_COLUMNS, *_FLAGS, _MEMBERSHIP_OF_ROW),
    False: sa.select(*_IMAGE_COLUMNS, *_FLAGS, sa.null()),
}
# Put in order (by id) here, not by ORDER BY: with it SQLite reads every active location through
# the status index, whose rows come in id order, rather than each image's few.
_ACTIVE_LOCATIONS = sa.select(*_LOCATION_COLUMNS).where(
    _LOCS.c.image_id.in_(_IDS), _LOCS.c.status == LocationStatus.ACTIVE
)
_MEMBER_STATUS = sa.select(_MEMBERS.c.status).where(
    _MEMBERS.c.image_id == sa.bindparam("image_id"),
    _MEMBERS.c.member == sa.bindparam("member"),
    _MEMBERS.c.deleted.is_(False),
)
_IMAGE_WIDTH = len(IMAGE_KEYS)


def detached(model: type[_Model], keys: list[str], values: Sequence[Any]) -> _Model:
    """A `model` instance holding `values` (in the order of `keys`), outside any session."""
    instance: _Model = sa.inspect(model).class_manager.new_instance()
    instance.__dict__.update(zip(keys, values, strict=False))
    return instance


class ImageLookup:
    """Reads for a show or a list page, on a connection of Database.connect() (a show) or
    Database.read_connection() (a list page, which may scan)."""

    def __init__(self, connection: AsyncConnection | DirectConnection) -> None:
        self.connection = connection

    async def record(self, image_id: str) -> ImageRecord | None:
        """The live image with its properties, tags and active locations."""
        row = (await self.connection.execute(_SHOWN, {"image_id": image_id})).one_or_none()
        if row is None:
            return None
        image = detached(Image, IMAGE_KEYS, row)
        has_extras, has_locations = row[_IMAGE_WIDTH:]
        if not (has_extras or has_locations):
            return ImageRecord(image, {}, [], [])  # nothing hangs on it: nothing more to read
        return (await self._records([image], [has_extras], [has_locations]))[0]

    async def image(self, image_id: str) -> Image | None:
        """The live image alone (a list's marker)."""
        row = (await self.connection.execute(_LIVE_IMAGE, {"image_id": image_id})).one_or_none()
        return None if row is None else detached(Image, IMAGE_KEYS, row)

    async def page(
        self, ctx: RequestContext, query: ListQuery, marker: Image | None
    ) -> list[ListedImage]:
        """The images of the page, each with the caller's live membership status on it."""
        columns = _LISTED[bool(ctx.project_id)]
        statement = page_statement(ctx, query, marker, columns)
        rows = await self.connection.execute(statement, page_parameters(ctx))
        width = _IMAGE_WIDTH
        return [
            ListedImage(detached(Image, IMAGE_KEYS, row), *row[width : width + 3]) for row in rows
        ]

    async def records(self, listed: Sequence[ListedImage]) -> list[ImageRecord]:
        """The records of listed images, in their order."""
        return await self._records(
            [item.image for item in listed],
            [item.has_extras for item in listed],
            [item.has_locations for item in listed],
        )

    async def _records(
        self, images: list[Image], has_extras: list[bool], has_locations: list[bool]
    ) -> list[ImageRecord]:
        """Properties and tags in one statement for the images that have any, active
        locations in one for the images that have any."""
        properties: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, list[str]] = defaultdict(list)
        locations: dict[str, list[ImageLocation]] = defaultdict(list)
        extras = [image.id for image, flag in zip(images, has_extras, strict=True) if flag]
        if extras:
            rows = await self.connection.execute(PROPERTIES_AND_TAGS, {"ids": extras})
            for kind, image_id, name, value, _id in rows:
                if kind == 0:
                    properties[image_id][name] = value
                else:
                    tags[image_id].append(value)
        located = [image.id for image, flag in zip(images, has_locations, strict=True) if flag]
        if located:
            rows = await self.connection.execute(_ACTIVE_LOCATIONS, {"ids": located})
            found = [detached(ImageLocation, _LOCATION_KEYS, row) for row in rows]
            for location in sorted(found, key=attrgetter("id")):
                locations[location.image_id].append(location)
        return [
            ImageRecord(image, properties[image.id], tags[image.id], locations[image.id])
            for image in images
        ]

    async def member_status(self, image: Image, project_id: str | None) -> str | None:
        """As access.membership: only shared images of other projects have a status that
        matters to policy."""
        if project_id is None or image.visibility != Visibility.SHARED or image.owner == project_id:
            return None
        result = await self.connection.execute(
            _MEMBER_STATUS, {"image_id": image.id, "member": project_id}
        )
        status: str | None = result.scalar_one_or_none()
        return status


class ListedImage:
    """A page's image, whether anything hangs on it, and the caller's membership status."""

    __slots__ = ("has_extras", "has_locations", "image", "member_status")

    def __init__(
        self, image: Image, has_extras: bool, has_locations: bool, member_status: str | None
    ) -> None:
        self.image = image
        self.has_extras = has_extras
        self.has_locations = has_locations
        self.member_status = member_status
