"""Storage reservations: bytes in flight counted against user_storage_quota, and the
per-owner row their checks lock.

Revision ID: 0008_expand
Revises: 0007_expand
Phase: expand (adds tables only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_expand"
down_revision = "0007_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_reservations",
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_storage_reservations_owner", "storage_reservations", ["owner"])
    op.create_table("storage_owners", sa.Column("owner", sa.String(255), primary_key=True))


def downgrade() -> None:
    op.drop_table("storage_owners")
    op.drop_table("storage_reservations")
