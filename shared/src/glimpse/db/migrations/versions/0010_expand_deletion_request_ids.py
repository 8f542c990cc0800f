"""Deletion request ids: the scrubber's log lines about data it removes, and about keys it
deletes, carry the id of the API request that deleted the image.

Revision ID: 0010_expand
Revises: 0009_expand
Phase: expand (adds nullable columns only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_expand"
down_revision = "0009_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("image_locations", "image_key_cleanups"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("request_id", sa.String(255), nullable=True))


def downgrade() -> None:
    for table in ("image_locations", "image_key_cleanups"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request_id")
