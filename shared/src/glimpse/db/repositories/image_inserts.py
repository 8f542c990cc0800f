"""A new image written with Core statements on a plain connection, without a session: a
session's unit of work (its flush, identity map and commit) costs a create more CPU than its
few INSERTs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from glimpse.db.core import table_of
from glimpse.db.direct_sqlite import DirectConnection
from glimpse.db.repositories.image_lookup import IMAGE_KEYS, detached
from glimpse.db.tables import Image, ImageProperty, ImageTag

_IMAGE = table_of(Image)
_PROPS = table_of(ImageProperty)
_TAGS = table_of(ImageTag)

# The id is the only unique key of an image, so a conflict means the id was used before
# (deleted images keep theirs): one statement both checks and writes.
_INSERT_NEW = {
    "sqlite": sqlite.insert(_IMAGE).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(_IMAGE).on_conflict_do_nothing(),
}
_INSERT_PROPERTIES = sa.insert(_PROPS)
_INSERT_TAGS = sa.insert(_TAGS)

# Every column's default as the model's constructor sets it, taken once from one instance.
_TEMPLATE = Image(id="", status="", visibility="")
# Not created_at: its default is the time the template was made.
_DEFAULTS = {key: _TEMPLATE.__dict__.get(key) for key in IMAGE_KEYS if key != "created_at"}


def new_image(**values: Any) -> Image:  # noqa: ANN401 -- column values of any type
    """Image(**values) without the model constructor's cost: the columns not given take
    their defaults (`created_at` must be given: its default is a time)."""
    if "created_at" not in values:
        raise TypeError("new_image() needs created_at")
    merged = {**_DEFAULTS, **values}
    return detached(Image, IMAGE_KEYS, [merged[key] for key in IMAGE_KEYS])


async def insert_image(
    connection: AsyncConnection | DirectConnection,
    image: Image,
    properties: dict[str, str],
    tags: list[str],
) -> bool:
    """Write a new image with its properties and tags; False, writing nothing, when its id
    was ever used."""
    values = {key: image.__dict__[key] for key in IMAGE_KEYS}
    inserted = await connection.execute(_INSERT_NEW[connection.dialect.name], values)
    if not inserted.rowcount:
        return False
    if properties:
        await connection.execute(
            _INSERT_PROPERTIES,
            [{"image_id": image.id, "name": k, "value": v} for k, v in properties.items()],
        )
    if tags:
        await connection.execute(
            _INSERT_TAGS, [{"image_id": image.id, "value": tag} for tag in tags]
        )
    return True
