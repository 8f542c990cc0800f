"""A shown image read with prebuilt Core statements on a plain connection, without a session.

A show reads a few rows by key and writes nothing, yet an ORM session costs it more CPU than
the statements themselves (its begin and commit, the identity map, each row's loading). The
rows come back as detached Image and ImageLocation objects, built as the ORM's loading builds
them (its constructor, then the column values straight into the instance's dict)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from glimpse.db.core import table_of
from glimpse.db.repositories.images import PROPERTIES_AND_TAGS, ImageRecord
from glimpse.db.tables import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glimpse.domain.images import LocationStatus, Visibility

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


_IMAGE_KEYS, _IMAGE_COLUMNS = _columns(Image)
_LOCATION_KEYS, _LOCATION_COLUMNS = _columns(ImageLocation)

# The image, and whether properties or tags (one flag) and active locations hang on it.
_SHOWN = sa.select(
    *_IMAGE_COLUMNS,
    sa.or_(
        sa.exists().where(_PROPS.c.image_id == _IMAGE.c.id),
        sa.exists().where(_TAGS.c.image_id == _IMAGE.c.id),
    ),
    sa.exists().where(_LOCS.c.image_id == _IMAGE.c.id, _LOCS.c.status == LocationStatus.ACTIVE),
).where(_IMAGE.c.id == sa.bindparam("image_id"), _IMAGE.c.deleted.is_(False))
_ACTIVE_LOCATIONS = (
    sa.select(*_LOCATION_COLUMNS)
    .where(_LOCS.c.image_id == sa.bindparam("image_id"), _LOCS.c.status == LocationStatus.ACTIVE)
    .order_by(_LOCS.c.id)
)
_MEMBER_STATUS = sa.select(_MEMBERS.c.status).where(
    _MEMBERS.c.image_id == sa.bindparam("image_id"),
    _MEMBERS.c.member == sa.bindparam("member"),
    _MEMBERS.c.deleted.is_(False),
)


def _detached(model: type[_Model], keys: list[str], values: Sequence[Any]) -> _Model:
    instance: _Model = sa.inspect(model).class_manager.new_instance()
    instance.__dict__.update(zip(keys, values, strict=False))
    return instance


class ImageLookup:
    """Reads for one show, on a connection of Database.connect()."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def record(self, image_id: str) -> ImageRecord | None:
        """The live image with its properties, tags and active locations; an image without
        any (most of them until uploaded) takes one statement, not three."""
        params = {"image_id": image_id}
        row = (await self.connection.execute(_SHOWN, params)).one_or_none()
        if row is None:
            return None
        image = _detached(Image, _IMAGE_KEYS, row)
        has_extras, has_locations = row[-2:]
        properties: dict[str, str] = {}
        tags: list[str] = []
        if has_extras:
            rows = await self.connection.execute(PROPERTIES_AND_TAGS, {"ids": [image_id]})
            for kind, _image_id, name, value, _id in rows:
                if kind == 0:
                    properties[name] = value
                else:
                    tags.append(value)
        locations: list[ImageLocation] = []
        if has_locations:
            rows = await self.connection.execute(_ACTIVE_LOCATIONS, params)
            locations = [_detached(ImageLocation, _LOCATION_KEYS, r) for r in rows]
        return ImageRecord(image, properties, tags, locations)

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
