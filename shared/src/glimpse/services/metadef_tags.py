"""Tags of a metadata definitions namespace, and resource types with their associations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.metadef_tables import MetadefNamespace, MetadefResourceType, MetadefTag
from glimpse.db.repositories.metadefs import AssociationRow, MetadefRepository
from glimpse.domain import metadef_policy
from glimpse.domain.errors import Conflict, InvalidInput, NotFound
from glimpse.domain.metadefs import Association
from glimpse.services.metadef_access import authorized_namespace, refuse_if_protected, unique

TAG_SORT_KEYS: Final = frozenset({"created_at", "updated_at", "name"})


@dataclass(frozen=True, slots=True)
class TagListQuery:
    limit: int | None = None  # None (or 0): every tag
    marker: str | None = None  # a tag name
    sort_key: str = "created_at"
    sort_dir: str = "desc"


def _tag_missing(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition tag with name={name} was not found in namespace={namespace}."
    )


def _tag_duplicate(name: str, namespace: str) -> str:
    return f"A metadata tag with name={name} already exists in namespace={namespace}."


class MetadefTagService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(self, ctx: RequestContext, namespace: str, name: str) -> MetadefTag:
        duplicate = _tag_duplicate(name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "add_metadef_tag")
            assert row.id is not None  # noqa: S101 -- a stored row
            if await repo.tag(row.id, name) is not None:
                raise Conflict(duplicate)
            return await repo.add_tag(row.id, name)

    async def create_many(
        self, ctx: RequestContext, namespace: str, names: tuple[str, ...], *, append: bool
    ) -> list[str]:
        """Create `names` in one transaction: instead of the namespace's tags, or besides them
        with `append` (X-Openstack-Append). No names change nothing, as in Glance."""
        async with self.db.write() as session, unique(_tag_duplicate(",".join(names), namespace)):
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "add_metadef_tags")
            assert row.id is not None  # noqa: S101 -- a stored row
            if not names:
                return []
            if append:
                for name in names:
                    if await repo.tag(row.id, name) is not None:
                        raise Conflict(_tag_duplicate(name, namespace))
            else:
                await repo.delete_tags(row.id)
            for name in names:
                await repo.add_tag(row.id, name)
            return list(names)

    async def list_tags(
        self, ctx: RequestContext, namespace: str, query: TagListQuery
    ) -> list[MetadefTag]:
        if query.sort_key not in TAG_SORT_KEYS:
            raise InvalidInput(f"Invalid sort key: {query.sort_key}")
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "get_metadef_tags")
            marker = None
            if query.marker:
                marker = await repo.tag(row.id, query.marker)
                if marker is None:
                    raise _tag_missing(query.marker, namespace)
            return await repo.tags(
                row.id,
                sort_key=query.sort_key,
                sort_dir=query.sort_dir,
                limit=query.limit or None,
                marker=marker,
            )

    async def _tag(
        self, repo: MetadefRepository, ctx: RequestContext, namespace: str, name: str, action: str
    ) -> tuple[MetadefNamespace, MetadefTag]:
        row = await authorized_namespace(repo, ctx, namespace, action)
        found = await repo.tag(row.id, name)
        if found is None:
            raise _tag_missing(name, namespace)
        return row, found

    async def show(self, ctx: RequestContext, namespace: str, name: str) -> MetadefTag:
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            _, found = await self._tag(repo, ctx, namespace, name, "get_metadef_tag")
            return found

    async def rename(
        self, ctx: RequestContext, namespace: str, name: str, new_name: str
    ) -> MetadefTag:
        duplicate = _tag_duplicate(new_name, namespace)
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row, found = await self._tag(repo, ctx, namespace, name, "modify_metadef_tag")
            if new_name != name and await repo.tag(row.id, new_name) is not None:
                raise Conflict(duplicate)
            await repo.rename_tag(found, new_name)
            return found

    async def delete(self, ctx: RequestContext, namespace: str, name: str) -> None:
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row, found = await self._tag(repo, ctx, namespace, name, "delete_metadef_tag")
            refuse_if_protected(row, f"tag {name}")
            await repo.delete_tag(found)


class MetadefResourceTypeService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def list_resource_types(self, ctx: RequestContext) -> list[MetadefResourceType]:
        metadef_policy.enforce(ctx, "list_metadef_resource_types")
        async with self.db.read() as session:
            return await MetadefRepository(session).resource_types()

    async def associations(self, ctx: RequestContext, namespace: str) -> list[AssociationRow]:
        async with self.db.read() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(repo, ctx, namespace, "list_metadef_resource_types")
            if not metadef_policy.allowed(ctx, "get_metadef_resource_type", row):
                return []
            return await repo.associations([row.id] if row.id else [])

    async def associate(
        self, ctx: RequestContext, namespace: str, association: Association
    ) -> AssociationRow:
        duplicate = (
            f"The metadata definition resource-type association of "
            f"resource-type={association.name} to namespace={namespace} already exists."
        )
        async with self.db.write() as session, unique(duplicate):
            repo = MetadefRepository(session)
            row = await authorized_namespace(
                repo, ctx, namespace, "add_metadef_resource_type_association"
            )
            assert row.id is not None  # noqa: S101 -- a stored row
            if await repo.association(row.id, association.name) is not None:
                raise Conflict(duplicate)
            return await repo.add_association(row.id, association)

    async def dissociate(self, ctx: RequestContext, namespace: str, resource_type: str) -> None:
        """Remove the association (the resource type itself stays)."""
        async with self.db.write() as session:
            repo = MetadefRepository(session)
            row = await authorized_namespace(
                repo, ctx, namespace, "remove_metadef_resource_type_association"
            )
            assert row.id is not None  # noqa: S101 -- a stored row
            found = await repo.association(row.id, resource_type)
            if found is None:
                raise NotFound(f"Failed to find resource type {resource_type} to delete")
            refuse_if_protected(row, f"resource-type-association {resource_type}")
            await repo.remove_association(found)
