"""Tasks: Glance's task records (imports), with a worker lease.

Revision ID: 0004_expand
Revises: 0003_expand
Phase: expand (adds a table only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_expand"
down_revision = "0003_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("image_id", sa.String(36), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("expires_at", sa.DateTime, nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    for column in ("type", "status", "owner", "image_id", "created_at", "deleted"):
        op.create_index(f"ix_tasks_{column}", "tasks", [column])


def downgrade() -> None:
    op.drop_table("tasks")
