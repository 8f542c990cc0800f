"""Key cleanups: encryption keys to delete from the key manager once their image is gone.

Revision ID: 0003_expand
Revises: 0002_expand
Phase: expand (adds a table only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_expand"
down_revision = "0002_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_key_cleanups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("key_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("roles", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("user_token", sa.Text, nullable=True),
        sa.Column("token_expires_at", sa.DateTime, nullable=True),
        sa.Column("trust_id", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_image_key_cleanups_image_id", "image_key_cleanups", ["image_id"])
    op.create_index("ix_image_key_cleanups_status", "image_key_cleanups", ["status"])
    op.create_index(
        "ix_image_key_cleanups_next_attempt_at", "image_key_cleanups", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("image_key_cleanups")
