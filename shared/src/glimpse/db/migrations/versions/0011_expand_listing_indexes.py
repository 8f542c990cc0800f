"""Indexes for the image list: its every query has deleted = false and os_hidden = one value,
then orders by created_at and id (the default sort, and the tie-break of every other), so an
index on those four reads a page, or the page after a marker, without sorting the table; the
second does the same for a name filter.

Revision ID: 0011_expand
Revises: 0010_expand
Phase: expand (adds indexes only).
"""

from __future__ import annotations

from alembic import op

revision = "0011_expand"
down_revision = "0010_expand"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_images_listing": ["deleted", "os_hidden", "created_at", "id"],
    "ix_images_listing_name": ["deleted", "os_hidden", "name", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "images", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="images")
