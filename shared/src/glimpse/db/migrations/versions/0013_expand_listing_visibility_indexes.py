"""Indexes for a list page's visibility parts: a project's page merges its own images (by
owner) with others' public, community or shared ones (by visibility), each read in created_at
and id order, so a project that sees few images among many reads a page's worth of each
instead of walking every image it may not see.

Revision ID: 0013_expand
Revises: 0012_expand
Phase: expand (adds indexes only).
"""

from __future__ import annotations

from alembic import op

revision = "0013_expand"
down_revision = "0012_expand"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_images_listing_owner": ["deleted", "os_hidden", "owner", "created_at", "id"],
    "ix_images_listing_visibility": ["deleted", "os_hidden", "visibility", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "images", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="images")
