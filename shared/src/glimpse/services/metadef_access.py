"""What every metadata definitions use case does first, and the views they return."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from glimpse.context import RequestContext
from glimpse.db.metadef_tables import MetadefNamespace, MetadefObject, MetadefTag
from glimpse.db.repositories.metadefs import AssociationRow, MetadefRepository
from glimpse.domain import metadef_policy
from glimpse.domain.errors import Conflict, Forbidden
from glimpse.domain.metadef_policy import NamespaceNotFound


@dataclass(frozen=True, slots=True)
class ObjectView:
    """An object as shown: its property names (and required list) as a resource type sees
    them when the caller asked for one."""

    row: MetadefObject
    namespace: str
    properties: dict[str, Any]
    required: list[str]


@dataclass(frozen=True, slots=True)
class NamespaceView:
    row: MetadefNamespace
    associations: list[AssociationRow] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    objects: list[ObjectView] = field(default_factory=list)
    tags: list[MetadefTag] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NamespacePage:
    namespaces: list[NamespaceView]
    next_marker: str | None


def object_view(row: MetadefObject, namespace: str, prefix: str | None = None) -> ObjectView:
    prefix = prefix or ""
    return ObjectView(
        row=row,
        namespace=namespace,
        properties={f"{prefix}{name}": value for name, value in row.json_schema.items()},
        required=[f"{prefix}{name}" for name in row.required],
    )


async def readable_namespace(
    repo: MetadefRepository, ctx: RequestContext, name: str, *, lock: bool = False
) -> MetadefNamespace:
    """The namespace `name` if it exists for the caller (404 otherwise)."""
    row = await repo.namespace(name, lock=lock)
    if row is None or not metadef_policy.visible(ctx, row):
        raise NamespaceNotFound(name)
    return row


async def authorized_namespace(
    repo: MetadefRepository, ctx: RequestContext, name: str, action: str, *, lock: bool = False
) -> MetadefNamespace:
    """The namespace, once `ctx` may do `action` to it (404 if it may not read it, else 403)."""
    row = await readable_namespace(repo, ctx, name, lock=lock)
    metadef_policy.enforce(ctx, action, row)
    return row


def refuse_if_protected(namespace: MetadefNamespace, what: str) -> None:
    """Nothing in a protected namespace may be deleted (changes are allowed)."""
    if namespace.protected:
        raise Forbidden(f"Metadata definition {what} is protected and cannot be deleted.")


@asynccontextmanager
async def unique(message: str) -> AsyncIterator[None]:
    """A unique constraint a concurrent request got to first is a conflict, not a 500."""
    try:
        yield
    except IntegrityError:
        raise Conflict(message) from None
