"""Image members: the projects a shared image is shared with.

Revision ID: 0002_expand
Revises: 0001_expand
Phase: expand (adds a table only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_expand"
down_revision = "0001_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "image_id",
            sa.String(36),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.UniqueConstraint("image_id", "member", name="uq_image_members_image_id_member"),
    )
    op.create_index("ix_image_members_image_id", "image_members", ["image_id"])
    op.create_index("ix_image_members_member", "image_members", ["member"])
    op.create_index("ix_image_members_deleted", "image_members", ["deleted"])


def downgrade() -> None:
    op.drop_table("image_members")
