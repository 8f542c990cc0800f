"""Upload leases: the API node writing an image's data (saving) renews a lease, so an upload
whose node died is taken back to queued, and a live one never is.

Revision ID: 0007_expand
Revises: 0006_expand
Phase: expand (adds nullable columns only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_expand"
down_revision = "0006_expand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("upload_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("upload_lease_until", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("upload_lease_until")
        batch.drop_column("upload_id")
