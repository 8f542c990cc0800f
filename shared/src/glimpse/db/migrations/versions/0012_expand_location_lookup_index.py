"""An index on image locations by image and status: a show and a list page ask for an image's
active locations, and SQLite (without ANALYZE, as the service runs it) otherwise reads them
through the status index, every active location of every image, instead of the image's few.

Revision ID: 0012_expand
Revises: 0011_expand
Phase: expand (adds an index only).
"""

from __future__ import annotations

from alembic import op

revision = "0012_expand"
down_revision = "0011_expand"
branch_labels = None
depends_on = None

_INDEX = "ix_image_locations_image_id_status"


def upgrade() -> None:
    op.create_index(_INDEX, "image_locations", ["image_id", "status"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="image_locations")
