"""Table models. Column names follow Glance's schema so operators recognise them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

LEGACY_STORE_KEY = "backend"


def utcnow() -> datetime:
    """Naive UTC, second precision: what the API shows and what both databases store alike."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class Image(SQLModel, table=True):
    __tablename__ = "images"
    # The image list's: deleted and os_hidden are in every list query, created_at and id
    # order every page (migration 0011); a project's page merges its own images (by owner)
    # with others' (by visibility), each read in that order (migration 0013).
    __table_args__ = (
        sa.Index("ix_images_listing", "deleted", "os_hidden", "created_at", "id"),
        sa.Index("ix_images_listing_name", "deleted", "os_hidden", "name", "created_at", "id"),
        sa.Index("ix_images_listing_owner", "deleted", "os_hidden", "owner", "created_at", "id"),
        sa.Index(
            "ix_images_listing_visibility", "deleted", "os_hidden", "visibility", "created_at", "id"
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    name: str | None = Field(default=None, max_length=255)
    size: int | None = Field(default=None, sa_type=sa.BigInteger)
    virtual_size: int | None = Field(default=None, sa_type=sa.BigInteger)
    status: str = Field(max_length=30, index=True)
    visibility: str = Field(max_length=20, index=True)
    disk_format: str | None = Field(default=None, max_length=20)
    container_format: str | None = Field(default=None, max_length=20)
    checksum: str | None = Field(default=None, max_length=32, index=True)
    os_hash_algo: str | None = Field(default=None, max_length=64)
    os_hash_value: str | None = Field(default=None, max_length=128, index=True)
    owner: str | None = Field(default=None, max_length=255, index=True)
    min_disk: int = Field(default=0)
    min_ram: int = Field(default=0)
    protected: bool = Field(default=False)
    os_hidden: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, index=True, sa_type=sa.DateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    deleted: bool = Field(default=False, index=True)
    # While saving: the upload writing the data, and until when its API node is presumed alive
    # (it renews the lease as it goes); never shown by the API.
    upload_id: str | None = Field(default=None, max_length=32)
    upload_lease_until: datetime | None = Field(default=None, sa_type=sa.DateTime)


class ImageProperty(SQLModel, table=True):
    __tablename__ = "image_properties"
    __table_args__ = (
        sa.UniqueConstraint("image_id", "name", name="uq_image_properties_image_id_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36)
    name: str = Field(max_length=255, index=True)
    value: str = Field(sa_type=sa.Text)


class ImageTag(SQLModel, table=True):
    __tablename__ = "image_tags"
    __table_args__ = (
        sa.UniqueConstraint("image_id", "value", name="uq_image_tags_image_id_value"),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36)
    value: str = Field(max_length=255, index=True)


class ImageLocation(SQLModel, table=True):
    __tablename__ = "image_locations"
    # An image's active locations (show, list): without it SQLite reads them by status alone.
    __table_args__ = (sa.Index("ix_image_locations_image_id_status", "image_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36)
    value: str = Field(sa_type=sa.Text)
    meta_data: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default="active", max_length=30, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    # Failed attempts to delete its data, and when the next may be made (backoff); NULL: now.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = Field(default=None, index=True, sa_type=sa.DateTime)
    # The request that took the location off its image: the scrubber's lines about its data
    # carry it, as the worker's lines carry the request that started a job.
    request_id: str | None = Field(default=None, max_length=255)

    @property
    def store_id(self) -> str | None:
        """The store holding this data (`backend` is the key rows written before Train use)."""
        return self.meta_data.get("store") or self.meta_data.get(LEGACY_STORE_KEY)

    @property
    def has_legacy_metadata(self) -> bool:
        return LEGACY_STORE_KEY in self.meta_data

    def normalized_metadata(self) -> dict[str, str]:
        """The metadata with a legacy `backend` key renamed to `store`."""
        metadata = {k: v for k, v in self.meta_data.items() if k != LEGACY_STORE_KEY}
        if self.store_id is not None:
            metadata["store"] = self.store_id
        return metadata


class ImageMember(SQLModel, table=True):
    """A project an image is shared with. Rows are soft-deleted, as in Glance, and a project
    added again gets its old row back (status reset to pending)."""

    __tablename__ = "image_members"
    __table_args__ = (
        sa.UniqueConstraint("image_id", "member", name="uq_image_members_image_id_member"),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: str = Field(foreign_key="images.id", ondelete="CASCADE", index=True, max_length=36)
    member: str = Field(max_length=255, index=True)
    status: str = Field(default="pending", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    deleted: bool = Field(default=False, index=True)


class ImageKeyCleanup(SQLModel, table=True):
    """An encryption key (cinder_encryption_key_id) to delete from the key manager once its
    image is really gone. Written in the image delete's own transaction, so a committed delete
    never loses its cleanup. See glimpse.services.key_cleanup for the life of a row."""

    __tablename__ = "image_key_cleanups"

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key: the cleanup must outlive a purge of the image row.
    image_id: str = Field(index=True, max_length=36)
    key_id: str = Field(max_length=255)
    project_id: str | None = Field(default=None, max_length=255)  # the image owner's
    user_id: str | None = Field(default=None, max_length=255)  # who deleted the image
    roles: str = Field(default="", max_length=1024)  # their roles, for the trust
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    # The deleting user's token, Fernet-encrypted; NULL once used up or expired.
    user_token: str | None = Field(default=None, sa_type=sa.Text)
    token_expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    trust_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=255)
    request_id: str | None = Field(default=None, max_length=255)  # the image delete's
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class Task(SQLModel, table=True):
    """A Glance task: one per import. The row is also the outbox of its job message (the
    message carries the id only), and `lease_until` says until when the worker that claimed it
    is presumed alive (a redelivered message may take over after that)."""

    __tablename__ = "tasks"

    id: str = Field(primary_key=True, max_length=36)
    type: str = Field(max_length=30, index=True)
    status: str = Field(max_length=30, index=True)
    input: dict[str, object] = Field(default_factory=dict, sa_type=sa.JSON)
    result: dict[str, object] | None = Field(default=None, sa_type=sa.JSON)
    message: str = Field(default="", sa_type=sa.Text)
    owner: str | None = Field(default=None, max_length=255, index=True)
    image_id: str | None = Field(default=None, max_length=36, index=True)
    user_id: str | None = Field(default=None, max_length=255)
    request_id: str | None = Field(default=None, max_length=255)
    expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    lease_until: datetime | None = Field(default=None, sa_type=sa.DateTime)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=sa.DateTime)
    deleted: bool = Field(default=False, index=True)


class StorageReservation(SQLModel, table=True):
    """Bytes an image being written (an upload, staging, an import) is about to add to its
    owner's storage beyond the size its row records. They count against user_storage_quota
    with the stored images, so writers on any API node or worker cannot pass the quota
    together. Grown under the owner's StorageOwner row lock as the data arrives, removed in the
    transaction that records the image's size or that gives up on the data; a row whose lease
    ran out (its process died) no longer counts."""

    __tablename__ = "storage_reservations"

    image_id: str = Field(primary_key=True, max_length=36)
    owner: str = Field(max_length=255, index=True)  # "" for an image without owner
    size: int = Field(sa_type=sa.BigInteger)
    lease_until: datetime = Field(sa_type=sa.DateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime)
    updated_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class StorageOwner(SQLModel, table=True):
    """A project that has reserved storage: its row is locked (SELECT ... FOR UPDATE) while a
    reservation is checked and written, so two writers never both take the same room."""

    __tablename__ = "storage_owners"

    owner: str = Field(primary_key=True, max_length=255)


# The image cache (Glance's centralized_db driver: its table and column names). State is in the
# database, files are on each node; a node serves a file only while its row says it holds it.
_CACHE_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER


class NodeReference(SQLModel, table=True):
    """An API node with an image cache, named by its worker_self_reference_url, and its
    counters (Glimpse's addition: Glance keeps only the URL)."""

    __tablename__ = "node_reference"
    __table_args__ = (
        sa.UniqueConstraint("node_reference_url", name="uq_node_reference_node_reference_url"),
    )

    node_reference_id: int | None = Field(default=None, primary_key=True, sa_type=_CACHE_ID)
    node_reference_url: str = Field(max_length=255)
    hits: int = Field(default=0, sa_type=sa.BigInteger)
    misses: int = Field(default=0, sa_type=sa.BigInteger)
    bytes_served: int = Field(default=0, sa_type=sa.BigInteger)
    fills: int = Field(default=0, sa_type=sa.BigInteger)
    evictions: int = Field(default=0, sa_type=sa.BigInteger)
    seen_at: datetime | None = Field(default=None, sa_type=sa.DateTime)


class CachedImage(SQLModel, table=True):
    """An image whose verified data one node's cache holds."""

    __tablename__ = "cached_images"
    __table_args__ = (
        sa.UniqueConstraint(
            "image_id", "node_reference_id", name="ix_cached_images_image_id_node_reference_id"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_CACHE_ID)
    image_id: str = Field(max_length=36)
    last_accessed: datetime = Field(sa_type=sa.DateTime)
    last_modified: datetime = Field(sa_type=sa.DateTime)
    size: int = Field(sa_type=sa.BigInteger)
    hits: int = Field(default=0)
    checksum: str | None = Field(default=None, max_length=32)
    node_reference_id: int = Field(
        foreign_key="node_reference.node_reference_id", ondelete="CASCADE", sa_type=_CACHE_ID
    )


class CacheQueue(SQLModel, table=True):
    """An image queued for one node's prefetcher (PUT /v2/cache/{id} on that node)."""

    __tablename__ = "cache_queue"

    image_id: str = Field(primary_key=True, max_length=36)
    node_reference_id: int = Field(
        primary_key=True,
        foreign_key="node_reference.node_reference_id",
        ondelete="CASCADE",
        sa_type=_CACHE_ID,
    )
    queued_at: datetime = Field(sa_type=sa.DateTime)
