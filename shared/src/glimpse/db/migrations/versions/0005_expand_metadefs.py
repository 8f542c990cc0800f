"""Metadata definitions catalog: namespaces, resource types and their associations, objects,
properties and tags.

Revision ID: 0005_expand
Revises: 0004_expand
Phase: expand (adds tables only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_expand"
down_revision = "0004_expand"
branch_labels = None
depends_on = None

NAME = 80


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    ]


def _namespace_id() -> sa.Column[object]:
    return sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(NAME), nullable=False),
        sa.Column("display_name", sa.String(NAME), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    )
    op.create_index("ix_metadef_namespaces_owner", "metadef_namespaces", ["owner"])
    op.create_index("ix_metadef_namespaces_created_at", "metadef_namespaces", ["created_at"])

    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
    )

    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column(
            "resource_type_id",
            sa.Integer,
            sa.ForeignKey("metadef_resource_types.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "namespace_id",
            sa.Integer,
            sa.ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("properties_target", sa.String(NAME), nullable=True),
        sa.Column("prefix", sa.String(NAME), nullable=True),
        *_timestamps(),
    )
    op.create_index(
        "ix_metadef_namespace_resource_types_namespace_id",
        "metadef_namespace_resource_types",
        ["namespace_id"],
    )

    op.create_table(
        "metadef_objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _namespace_id(),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("required", sa.JSON, nullable=False),
        sa.Column("json_schema", sa.JSON, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
    )
    op.create_index("ix_metadef_objects_name", "metadef_objects", ["name"])

    op.create_table(
        "metadef_properties",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _namespace_id(),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("json_schema", sa.JSON, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
    )
    op.create_index("ix_metadef_properties_name", "metadef_properties", ["name"])

    op.create_table(
        "metadef_tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _namespace_id(),
        sa.Column("name", sa.String(NAME), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
    )
    op.create_index("ix_metadef_tags_name", "metadef_tags", ["name"])
    op.create_index("ix_metadef_tags_created_at", "metadef_tags", ["created_at"])


def downgrade() -> None:
    for table in (
        "metadef_tags",
        "metadef_properties",
        "metadef_objects",
        "metadef_namespace_resource_types",
        "metadef_resource_types",
        "metadef_namespaces",
    ):
        op.drop_table(table)
