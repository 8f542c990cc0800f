"""All queries on the metadata definitions catalog. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from glimpse.context import RequestContext
from glimpse.db.core import table_of
from glimpse.db.metadef_tables import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefTag,
)
from glimpse.db.tables import utcnow
from glimpse.domain.metadefs import (
    PUBLIC,
    Association,
    NamespaceFields,
    ObjectDefinition,
    PropertyDefinition,
)

_NS = table_of(MetadefNamespace)
_RT = table_of(MetadefResourceType)
_ASSOC = table_of(MetadefNamespaceResourceType)
_OBJ = table_of(MetadefObject)
_PROP = table_of(MetadefProperty)
_TAG = table_of(MetadefTag)
_CONTENT: Final = (_ASSOC, _OBJ, _PROP, _TAG)


@dataclass(frozen=True, slots=True)
class AssociationRow:
    namespace_id: int
    resource_type_id: int
    name: str
    prefix: str | None
    properties_target: str | None
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class NamespacePageQuery:
    limit: int
    marker: MetadefNamespace | None
    sort_key: str
    sort_dir: str  # asc or desc
    visibility: str | None
    resource_types: tuple[str, ...]  # any of them (empty: no filter)


def _sortable(table: sa.Table, key: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = table.c[key]
    # NULLs would compare as unknown in the keyset condition; sort them as the lowest value.
    if key == "display_name":
        return sa.func.coalesce(column, "")
    if key == "updated_at":
        return sa.func.coalesce(column, table.c.created_at)
    if key == "protected":
        # SQL will not compare a boolean with < or >; 0 and 1 it will.
        return sa.cast(column, sa.Integer)
    return column


def _keyset(
    table: sa.Table,
    keys: Sequence[str],
    descending: bool,
    marker: Any,  # noqa: ANN401 -- a row
) -> tuple[list[sa.UnaryExpression[Any]], ColumnElement[bool] | None]:
    """ORDER BY `keys` (all one way) and, with a marker row, the rows strictly after it."""
    expressions = [_sortable(table, key) for key in keys]
    order = [e.desc() if descending else e.asc() for e in expressions]
    if marker is None:
        return order, None
    values = [_value(marker, key) for key in keys]
    clauses = []
    for index, expression in enumerate(expressions):
        equal = [expressions[i] == values[i] for i in range(index)]
        beyond = expression < values[index] if descending else expression > values[index]
        clauses.append(sa.and_(*equal, beyond))
    return order, sa.or_(*clauses)


def _value(row: Any, key: str) -> Any:  # noqa: ANN401 -- any column value
    value = getattr(row, key)
    if value is None and key == "display_name":
        return ""
    if value is None and key == "updated_at":
        return row.created_at
    if isinstance(value, bool):
        return int(value)
    return value


def _sort_keys(key: str) -> list[str]:
    """The requested key, then created_at and id so the order is total."""
    return [key, *(k for k in ("created_at", "id") if k != key)]


class MetadefRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- namespaces ----------------------------------------------------------------------

    async def namespace(self, name: str, *, lock: bool = False) -> MetadefNamespace | None:
        statement = sa.select(MetadefNamespace).where(_NS.c.namespace == name)
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def count_namespaces(self) -> int:
        statement = sa.select(sa.func.count()).select_from(_NS)
        return int((await self.session.execute(statement)).scalar_one())

    async def all_namespaces(self) -> list[MetadefNamespace]:
        statement = sa.select(MetadefNamespace).order_by(_NS.c.namespace)
        return list((await self.session.execute(statement)).scalars())

    async def page_namespaces(
        self, ctx: RequestContext, query: NamespacePageQuery
    ) -> list[MetadefNamespace]:
        statement = sa.select(MetadefNamespace)
        if not ctx.is_admin:
            # Glance's database-level rule: the caller's own namespaces and public ones.
            seen = _NS.c.visibility == PUBLIC
            if ctx.project_id is not None:
                seen = sa.or_(seen, _NS.c.owner == ctx.project_id)
            statement = statement.where(seen)
        if query.visibility is not None:
            statement = statement.where(_NS.c.visibility == query.visibility)
        if query.resource_types:
            associated = (
                sa.select(_ASSOC.c.namespace_id)
                .join(_RT, _RT.c.id == _ASSOC.c.resource_type_id)
                .where(_RT.c.name.in_(query.resource_types))
            )
            statement = statement.where(_NS.c.id.in_(associated))
        order, after = _keyset(
            _NS, _sort_keys(query.sort_key), query.sort_dir == "desc", query.marker
        )
        if after is not None:
            statement = statement.where(after)
        statement = statement.order_by(*order).limit(query.limit)
        return list((await self.session.execute(statement)).scalars())

    async def add_namespace(self, fields: NamespaceFields, owner: str) -> MetadefNamespace:
        now = utcnow()
        row = MetadefNamespace(
            namespace=fields.namespace,
            display_name=fields.display_name,
            description=fields.description,
            visibility=fields.visibility,
            protected=fields.protected,
            owner=owner,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_namespace(
        self, row: MetadefNamespace, fields: NamespaceFields, owner: str
    ) -> None:
        row.namespace = fields.namespace
        row.display_name = fields.display_name
        row.description = fields.description
        row.visibility = fields.visibility
        row.protected = fields.protected
        row.owner = owner
        row.updated_at = utcnow()
        await self.session.flush()

    async def delete_namespace(self, row: MetadefNamespace) -> None:
        await self._delete_content(row.id, *_CONTENT)
        await self.session.execute(sa.delete(_NS).where(_NS.c.id == row.id))
        self.session.expunge(row)

    async def _delete_content(self, namespace_id: int | None, *tables: sa.Table) -> None:
        for table in tables:
            await self.session.execute(sa.delete(table).where(table.c.namespace_id == namespace_id))

    async def delete_everything(self) -> None:
        for table in (*_CONTENT, _NS, _RT):
            await self.session.execute(sa.delete(table))

    # -- resource types and associations -------------------------------------------------

    async def resource_types(self) -> list[MetadefResourceType]:
        statement = sa.select(MetadefResourceType).order_by(_RT.c.name)
        return list((await self.session.execute(statement)).scalars())

    async def associations(self, namespace_ids: Sequence[int]) -> list[AssociationRow]:
        """The associations of these namespaces, oldest first (ties: oldest resource type)."""
        if not namespace_ids:
            return []
        statement = (
            sa.select(
                _ASSOC.c.namespace_id,
                _ASSOC.c.resource_type_id,
                _RT.c.name,
                _ASSOC.c.prefix,
                _ASSOC.c.properties_target,
                _ASSOC.c.created_at,
                _ASSOC.c.updated_at,
            )
            .join(_RT, _RT.c.id == _ASSOC.c.resource_type_id)
            .where(_ASSOC.c.namespace_id.in_(namespace_ids))
            .order_by(_ASSOC.c.created_at, _ASSOC.c.resource_type_id)
        )
        return [AssociationRow(*row) for row in await self.session.execute(statement)]

    async def association(self, namespace_id: int, name: str) -> AssociationRow | None:
        for row in await self.associations([namespace_id]):
            if row.name == name:
                return row
        return None

    async def _resource_type(self, name: str, *, protected: bool) -> int:
        """The id of resource type `name`, created (`protected` as given) if new."""
        found = await self.session.execute(sa.select(_RT.c.id).where(_RT.c.name == name))
        resource_type_id = found.scalar_one_or_none()
        if resource_type_id is not None:
            return int(resource_type_id)
        now = utcnow()
        row = MetadefResourceType(name=name, protected=protected, created_at=now, updated_at=now)
        self.session.add(row)
        await self.session.flush()
        assert row.id is not None  # noqa: S101 -- set by the flush
        return row.id

    async def add_association(
        self, namespace_id: int, association: Association, *, protected_type: bool = False
    ) -> AssociationRow:
        type_id = await self._resource_type(association.name, protected=protected_type)
        now = utcnow()
        self.session.add(
            MetadefNamespaceResourceType(
                resource_type_id=type_id,
                namespace_id=namespace_id,
                prefix=association.prefix,
                properties_target=association.properties_target,
                created_at=now,
                updated_at=now,
            )
        )
        await self.session.flush()
        return AssociationRow(
            namespace_id,
            type_id,
            association.name,
            association.prefix,
            association.properties_target,
            now,
            now,
        )

    async def update_association(self, row: AssociationRow, association: Association) -> None:
        await self.session.execute(
            sa.update(_ASSOC)
            .where(
                _ASSOC.c.namespace_id == row.namespace_id,
                _ASSOC.c.resource_type_id == row.resource_type_id,
            )
            .values(
                prefix=association.prefix,
                properties_target=association.properties_target,
                updated_at=utcnow(),
            )
        )

    async def remove_association(self, row: AssociationRow) -> None:
        await self.session.execute(
            sa.delete(_ASSOC).where(
                _ASSOC.c.namespace_id == row.namespace_id,
                _ASSOC.c.resource_type_id == row.resource_type_id,
            )
        )

    # -- objects -------------------------------------------------------------------------

    async def objects(self, namespace_id: int | None) -> list[MetadefObject]:
        statement = (
            sa.select(MetadefObject).where(_OBJ.c.namespace_id == namespace_id).order_by(_OBJ.c.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def object(self, namespace_id: int | None, name: str) -> MetadefObject | None:
        statement = sa.select(MetadefObject).where(
            _OBJ.c.namespace_id == namespace_id, _OBJ.c.name == name
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add_object(self, namespace_id: int, definition: ObjectDefinition) -> MetadefObject:
        now = utcnow()
        row = MetadefObject(
            namespace_id=namespace_id,
            name=definition.name,
            description=definition.description,
            required=list(definition.required),
            json_schema=definition.properties_json(),
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def replace_object(self, row: MetadefObject, definition: ObjectDefinition) -> None:
        row.name = definition.name
        row.description = definition.description
        row.required = list(definition.required)
        row.json_schema = definition.properties_json()
        row.updated_at = utcnow()
        await self.session.flush()

    async def delete_object(self, row: MetadefObject) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def delete_objects(self, namespace_id: int | None) -> None:
        await self._delete_content(namespace_id, _OBJ)

    # -- properties ----------------------------------------------------------------------

    async def properties(self, namespace_id: int | None) -> list[MetadefProperty]:
        statement = (
            sa.select(MetadefProperty)
            .where(_PROP.c.namespace_id == namespace_id)
            .order_by(_PROP.c.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def property(self, namespace_id: int | None, name: str) -> MetadefProperty | None:
        statement = sa.select(MetadefProperty).where(
            _PROP.c.namespace_id == namespace_id, _PROP.c.name == name
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add_property(
        self, namespace_id: int, definition: PropertyDefinition
    ) -> MetadefProperty:
        now = utcnow()
        row = MetadefProperty(
            namespace_id=namespace_id,
            name=definition.name,
            json_schema=dict(definition.schema),
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def replace_property(self, row: MetadefProperty, definition: PropertyDefinition) -> None:
        row.name = definition.name
        row.json_schema = dict(definition.schema)
        row.updated_at = utcnow()
        await self.session.flush()

    async def delete_property(self, row: MetadefProperty) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def delete_properties(self, namespace_id: int | None) -> None:
        await self._delete_content(namespace_id, _PROP)

    # -- tags ----------------------------------------------------------------------------

    async def tags(
        self,
        namespace_id: int | None,
        *,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
        limit: int | None = None,
        marker: MetadefTag | None = None,
    ) -> list[MetadefTag]:
        statement = sa.select(MetadefTag).where(_TAG.c.namespace_id == namespace_id)
        order, after = _keyset(_TAG, _sort_keys(sort_key), sort_dir == "desc", marker)
        if after is not None:
            statement = statement.where(after)
        statement = statement.order_by(*order)
        if limit is not None:
            statement = statement.limit(limit)
        return list((await self.session.execute(statement)).scalars())

    async def tag(self, namespace_id: int | None, name: str) -> MetadefTag | None:
        statement = sa.select(MetadefTag).where(
            _TAG.c.namespace_id == namespace_id, _TAG.c.name == name
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add_tag(self, namespace_id: int, name: str) -> MetadefTag:
        now = utcnow()
        row = MetadefTag(namespace_id=namespace_id, name=name, created_at=now, updated_at=now)
        self.session.add(row)
        await self.session.flush()
        return row

    async def rename_tag(self, row: MetadefTag, name: str) -> None:
        row.name = name
        row.updated_at = utcnow()
        await self.session.flush()

    async def touch_tag(self, row: MetadefTag) -> None:
        row.updated_at = utcnow()
        await self.session.flush()

    async def delete_tag(self, row: MetadefTag) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def delete_tags(self, namespace_id: int | None) -> None:
        await self._delete_content(namespace_id, _TAG)
