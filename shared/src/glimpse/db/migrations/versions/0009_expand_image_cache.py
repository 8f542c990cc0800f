"""The image cache's state (Glance's centralized_db tables node_reference and cached_images,
with per-node counters), and the per-node prefetch queue.

Revision ID: 0009_expand
Revises: 0008_expand
Phase: expand (adds tables only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_expand"
down_revision = "0008_expand"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False)


def upgrade() -> None:
    op.create_table(
        "node_reference",
        sa.Column("node_reference_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("node_reference_url", sa.String(255), nullable=False),
        *(_counter(name) for name in ("hits", "misses", "bytes_served", "fills", "evictions")),
        sa.Column("seen_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("node_reference_url", name="uq_node_reference_node_reference_url"),
    )
    op.create_table(
        "cached_images",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("last_accessed", sa.DateTime, nullable=False),
        sa.Column("last_modified", sa.DateTime, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("checksum", sa.String(32), nullable=True),
        sa.Column(
            "node_reference_id",
            _ID,
            sa.ForeignKey("node_reference.node_reference_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.UniqueConstraint(
            "image_id", "node_reference_id", name="ix_cached_images_image_id_node_reference_id"
        ),
    )
    op.create_table(
        "cache_queue",
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column(
            "node_reference_id",
            _ID,
            sa.ForeignKey("node_reference.node_reference_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("queued_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cache_queue")
    op.drop_table("cached_images")
    op.drop_table("node_reference")
