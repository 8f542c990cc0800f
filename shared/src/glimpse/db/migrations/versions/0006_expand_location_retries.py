"""Location retries: a deletion that failed waits, with backoff, for its next attempt.

Revision ID: 0006_expand
Revises: 0005_expand
Phase: expand (adds columns with defaults only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_expand"
down_revision = "0005_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_locations") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime, nullable=True))
    op.create_index("ix_image_locations_next_attempt_at", "image_locations", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_image_locations_next_attempt_at", "image_locations")
    with op.batch_alter_table("image_locations") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
