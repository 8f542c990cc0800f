"""Metadata definition namespaces: list, create (with contents), show, update, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.metadef_tables import MetadefNamespace
from glimpse.db.repositories.metadefs import MetadefRepository, NamespacePageQuery
from glimpse.domain import metadef_policy
from glimpse.domain.errors import Conflict, Forbidden, InvalidInput
from glimpse.domain.metadefs import NamespaceDocument, NamespaceFields, prefixed
from glimpse.services.metadef_access import (
    NamespacePage,
    NamespaceView,
    authorized_namespace,
    object_view,
    readable_namespace,
    refuse_if_protected,
    unique,
)

SORT_KEYS: Final = frozenset(
    {"created_at", "updated_at", "namespace", "display_name", "visibility", "owner", "protected"}
)


@dataclass(frozen=True, slots=True)
class NamespaceListQuery:
    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    visibility: str | None = None
    resource_types: tuple[str, ...] = ()


def _duplicate(name: str) -> str:
    return f"The metadata definition namespace={name} already exists."


def _owner(ctx: RequestContext, requested: str | None, current: str | None = None) -> str:
    """The owner of a created or updated namespace: the caller's project unless the body names
    one (as in Glance, a PUT without an owner gives the namespace to the caller's project).
    Only an admin may create a namespace for another project or change a namespace's owner."""
    owner = requested or ctx.project_id
    if owner is None:
        raise InvalidInput("The namespace needs an owner: the request has no project.")
    if not ctx.is_admin and owner != (current if current is not None else ctx.project_id):
        raise Forbidden("Only an admin may give a namespace to another project.")
    return owner


async def add_contents(
    repo: MetadefRepository, row: MetadefNamespace, document: NamespaceDocument
) -> None:
    """Everything a namespace document holds besides the namespace itself."""
    assert row.id is not None  # noqa: S101 -- a flushed row
    for association in document.associations:
        await repo.add_association(row.id, association)
    for prop in document.properties:
        await repo.add_property(row.id, prop)
    for definition in document.objects:
        await repo.add_object(row.id, definition)
    for tag in document.tags:
        await repo.add_tag(row.id, tag)


class MetadefNamespaceService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def list_namespaces(
        self, ctx: RequestContext, query: NamespaceListQuery
    ) -> NamespacePage:
        metadef_policy.enforce(ctx, "get_metadef_namespaces")
        # The list shows each namespace's resource type associations.
        metadef_policy.enforce(ctx, "list_metadef_resource_types")
        if query.sort_key not in SORT_KEYS:
            raise InvalidInput(f"Invalid sort key: {query.sort_key}")
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            marker = None
            if query.marker is not None:
                marker = await readable_namespace(repo, ctx, query.marker)
            rows = await repo.page_namespaces(
                ctx,
                NamespacePageQuery(
                    limit=query.limit,
                    marker=marker,
                    sort_key=query.sort_key,
                    sort_dir=query.sort_dir,
                    visibility=query.visibility,
                    resource_types=query.resource_types,
                ),
            )
            # Each row must also pass get_metadef_namespace (a policy file may narrow it);
            # the next marker still follows the database page.
            shown = [
                row for row in rows if metadef_policy.allowed(ctx, "get_metadef_namespace", row)
            ]
            associations = await repo.associations([row.id for row in shown if row.id])
        views = [
            NamespaceView(row, [a for a in associations if a.namespace_id == row.id])
            for row in shown
        ]
        full_page = query.limit > 0 and len(rows) == query.limit
        return NamespacePage(views, rows[-1].namespace if full_page else None)

    async def create(self, ctx: RequestContext, document: NamespaceDocument) -> NamespaceView:
        metadef_policy.enforce(ctx, "add_metadef_namespace")
        for present, action in (
            (document.associations, "add_metadef_resource_type_association"),
            (document.objects, "add_metadef_object"),
            (document.properties, "add_metadef_property"),
            (document.tags, "add_metadef_tag"),
        ):
            if present:
                metadef_policy.enforce(ctx, action)
        owner = _owner(ctx, document.fields.owner)
        name = document.fields.namespace
        async with self.db.write() as session, unique(_duplicate(name)):
            repo = MetadefRepository(session)
            if await repo.namespace(name) is not None:
                raise Conflict(_duplicate(name))
            row = await repo.add_namespace(document.fields, owner)
            await add_contents(repo, row, document)
            return await self._detail(repo, row)

    async def show(
        self, ctx: RequestContext, name: str, resource_type: str | None = None
    ) -> NamespaceView:
        """The namespace and its contents; with `resource_type`, property names as that
        resource type sees them (its association's prefix in front)."""
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "get_metadef_namespace")
            for action in (
                "list_metadef_resource_types",
                "get_metadef_objects",
                "get_metadef_properties",
                "get_metadef_tags",
            ):
                metadef_policy.enforce(ctx, action, row)
            return await self._detail(repo, row, resource_type)

    @staticmethod
    async def _detail(
        repo: MetadefRepository, row: MetadefNamespace, resource_type: str | None = None
    ) -> NamespaceView:
        associations = await repo.associations([row.id] if row.id else [])
        prefix = next(
            (a.prefix for a in associations if resource_type and a.name == resource_type), None
        )
        properties = {prop.name: prop.json_schema for prop in await repo.properties(row.id)}
        return NamespaceView(
            row=row,
            associations=associations,
            properties=prefixed(properties, prefix),
            objects=[object_view(obj, row.namespace, prefix) for obj in await repo.objects(row.id)],
            tags=await repo.tags(row.id),
        )

    async def update(
        self, ctx: RequestContext, name: str, fields: NamespaceFields
    ) -> NamespaceView:
        async with self.db.write() as session, unique(_duplicate(fields.namespace)):
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "modify_metadef_namespace", lock=True)
            owner = _owner(ctx, fields.owner, row.owner)
            if fields.namespace != row.namespace and await repo.namespace(fields.namespace):
                raise Conflict(_duplicate(fields.namespace))
            await repo.update_namespace(row, fields, owner)
            return NamespaceView(row)

    async def delete(self, ctx: RequestContext, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "delete_metadef_namespace", lock=True)
            refuse_if_protected(row, f"namespace {name}")
            await repo.delete_namespace(row)

    async def delete_objects(self, ctx: RequestContext, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "delete_metadef_namespace")
            refuse_if_protected(row, f"namespace {name}")
            await repo.delete_objects(row.id)

    async def delete_properties(self, ctx: RequestContext, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "delete_metadef_namespace")
            refuse_if_protected(row, f"namespace {name}")
            await repo.delete_properties(row.id)

    async def delete_tags(self, ctx: RequestContext, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, name, "delete_metadef_namespace")
            metadef_policy.enforce(ctx, "delete_metadef_tags", row)
            refuse_if_protected(row, f"namespace {name}")
            await repo.delete_tags(row.id)
