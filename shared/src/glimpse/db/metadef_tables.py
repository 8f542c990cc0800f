"""Tables of the metadata definitions catalog (metadefs), with Glance's table and column names.

Rows are deleted outright (Glance keeps no history of definitions either); a namespace's
contents go with it through ON DELETE CASCADE. Resource types are global and outlive their
associations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from glimpse.db.tables import utcnow

NAME_LENGTH = 80  # every metadef name, prefix and properties_target


class MetadefNamespace(SQLModel, table=True):
    __tablename__ = "metadef_namespaces"
    __table_args__ = (sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=NAME_LENGTH)
    display_name: str | None = Field(default=None, max_length=NAME_LENGTH)
    description: str | None = Field(default=None, sa_type=sa.Text)
    visibility: str = Field(default="private", max_length=32)
    protected: bool = Field(default=False)
    owner: str = Field(max_length=255, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class MetadefResourceType(SQLModel, table=True):
    """A kind of resource definitions apply to (OS::Glance::Image, OS::Nova::Flavor...).
    `protected` ones came with loaded definition files."""

    __tablename__ = "metadef_resource_types"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_LENGTH)
    protected: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class MetadefNamespaceResourceType(SQLModel, table=True):
    """A namespace applies to a resource type, its property names prefixed with `prefix`."""

    __tablename__ = "metadef_namespace_resource_types"

    resource_type_id: int = Field(
        foreign_key="metadef_resource_types.id", ondelete="CASCADE", primary_key=True
    )
    namespace_id: int = Field(
        foreign_key="metadef_namespaces.id", ondelete="CASCADE", primary_key=True, index=True
    )
    properties_target: str | None = Field(default=None, max_length=NAME_LENGTH)
    prefix: str | None = Field(default=None, max_length=NAME_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class MetadefObject(SQLModel, table=True):
    __tablename__ = "metadef_objects"
    __table_args__ = (
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = Field(foreign_key="metadef_namespaces.id", ondelete="CASCADE")
    name: str = Field(max_length=NAME_LENGTH, index=True)
    description: str | None = Field(default=None, sa_type=sa.Text)
    required: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Property name -> its JSON-schema fragment.
    json_schema: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class MetadefProperty(SQLModel, table=True):
    __tablename__ = "metadef_properties"
    __table_args__ = (
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = Field(foreign_key="metadef_namespaces.id", ondelete="CASCADE")
    name: str = Field(max_length=NAME_LENGTH, index=True)
    json_schema: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class MetadefTag(SQLModel, table=True):
    __tablename__ = "metadef_tags"
    __table_args__ = (
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = Field(foreign_key="metadef_namespaces.id", ondelete="CASCADE")
    name: str = Field(max_length=NAME_LENGTH, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
