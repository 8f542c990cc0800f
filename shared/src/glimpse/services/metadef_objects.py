"""Objects and properties of a metadata definitions namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.metadef_tables import MetadefNamespace, MetadefObject, MetadefProperty
from glimpse.db.repositories.metadefs import MetadefRepository
from glimpse.domain import metadef_policy
from glimpse.domain.errors import Conflict, NotFound
from glimpse.domain.metadefs import ObjectDefinition, PropertyDefinition, unprefixed
from glimpse.services.metadef_access import (
    ObjectView,
    authorized_namespace,
    object_view,
    refuse_if_protected,
    unique,
)


@dataclass(frozen=True, slots=True)
class PropertyView:
    name: str
    schema: dict[str, Any]


def _object_missing(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition object with name={name} was not found in namespace={namespace}."
    )


def _object_duplicate(name: str, namespace: str) -> str:
    return f"A metadata definition object with name={name} already exists in namespace={namespace}."


def _property_missing(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition property with name={name} was not found in namespace={namespace}."
    )


def _property_duplicate(name: str, namespace: str) -> str:
    return (
        f"A metadata definition property with name={name} already exists in namespace={namespace}."
    )


class MetadefObjectService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(
        self, ctx: RequestContext, namespace: str, definition: ObjectDefinition
    ) -> ObjectView:
        duplicate = _object_duplicate(definition.name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "add_metadef_object")
            assert row.id is not None  # noqa: S101 -- a stored row
            if await repo.object(row.id, definition.name) is not None:
                raise Conflict(duplicate)
            return object_view(await repo.add_object(row.id, definition), namespace)

    async def list_objects(self, ctx: RequestContext, namespace: str) -> list[ObjectView]:
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "get_metadef_objects")
            if not metadef_policy.allowed(ctx, "get_metadef_object", row):
                return []
            return [object_view(obj, namespace) for obj in await repo.objects(row.id)]

    async def _object(
        self, repo: MetadefRepository, ctx: RequestContext, namespace: str, name: str, action: str
    ) -> tuple[MetadefNamespace, MetadefObject]:
        row = await authorized_namespace(repo, ctx, namespace, action)
        found = await repo.object(row.id, name)
        if found is None:
            raise _object_missing(name, namespace)
        return row, found

    async def show(self, ctx: RequestContext, namespace: str, name: str) -> ObjectView:
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            _, found = await self._object(repo, ctx, namespace, name, "get_metadef_object")
            return object_view(found, namespace)

    async def update(
        self, ctx: RequestContext, namespace: str, name: str, definition: ObjectDefinition
    ) -> ObjectView:
        duplicate = _object_duplicate(definition.name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row, found = await self._object(repo, ctx, namespace, name, "modify_metadef_object")
            if definition.name != name and await repo.object(row.id, definition.name):
                raise Conflict(duplicate)
            await repo.replace_object(found, definition)
            return object_view(found, namespace)

    async def delete(self, ctx: RequestContext, namespace: str, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row, found = await self._object(repo, ctx, namespace, name, "delete_metadef_object")
            refuse_if_protected(row, f"object {name}")
            await repo.delete_object(found)


class MetadefPropertyService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(
        self, ctx: RequestContext, namespace: str, definition: PropertyDefinition
    ) -> PropertyView:
        duplicate = _property_duplicate(definition.name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "add_metadef_property")
            assert row.id is not None  # noqa: S101 -- a stored row
            if await repo.property(row.id, definition.name) is not None:
                raise Conflict(duplicate)
            added = await repo.add_property(row.id, definition)
            return PropertyView(added.name, added.json_schema)

    async def list_properties(self, ctx: RequestContext, namespace: str) -> list[PropertyView]:
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "get_metadef_properties")
            return [PropertyView(p.name, p.json_schema) for p in await repo.properties(row.id)]

    async def _property(
        self, repo: MetadefRepository, ctx: RequestContext, namespace: str, name: str, action: str
    ) -> tuple[MetadefNamespace, MetadefProperty]:
        row = await authorized_namespace(repo, ctx, namespace, action)
        found = await repo.property(row.id, name)
        if found is None:
            raise _property_missing(name, namespace)
        return row, found

    async def show(
        self, ctx: RequestContext, namespace: str, name: str, resource_type: str | None = None
    ) -> PropertyView:
        """One property; with `resource_type`, `name` is as that resource type sees it (its
        association's prefix in front) and is shown so."""
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "get_metadef_property")
            own_name = name
            if resource_type:
                metadef_policy.enforce(ctx, "get_metadef_resource_type", row)
                assert row.id is not None  # noqa: S101 -- a stored row
                association = await repo.association(row.id, resource_type)
                if association is None:
                    raise NotFound(
                        f"The metadata definition resource-type association of "
                        f"resource-type={resource_type} to namespace={namespace}, was not found."
                    )
                stripped = unprefixed(name, association.prefix)
                if stripped is None:
                    raise NotFound(
                        f"Property {name} does not start with the expected resource type "
                        f"association prefix of '{association.prefix}'."
                    )
                own_name = stripped
            found = await repo.property(row.id, own_name)
            if found is None:
                raise _property_missing(own_name, namespace)
            return PropertyView(found.name, found.json_schema)

    async def update(
        self, ctx: RequestContext, namespace: str, name: str, definition: PropertyDefinition
    ) -> PropertyView:
        duplicate = _property_duplicate(definition.name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row, found = await self._property(repo, ctx, namespace, name, "modify_metadef_property")
            if definition.name != name and await repo.property(row.id, definition.name):
                raise Conflict(duplicate)
            await repo.replace_property(found, definition)
            return PropertyView(found.name, found.json_schema)

    async def delete(self, ctx: RequestContext, namespace: str, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row, found = await self._property(repo, ctx, namespace, name, "remove_metadef_property")
            refuse_if_protected(row, f"property {name}")
            await repo.delete_property(found)
