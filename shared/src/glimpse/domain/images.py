"""Image vocabulary and the explicit status transition table."""

from __future__ import annotations

import enum
from typing import Final, TypedDict

from glimpse.domain.errors import Forbidden, InvalidTransition


class ImageStatus(enum.StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"
    DEACTIVATED = "deactivated"
    UPLOADING = "uploading"
    IMPORTING = "importing"


class LocationStatus(enum.StrEnum):
    """A location's life: its data is removed by whoever claims it (`deleting`), the API right
    after a delete or the scrubber once `scrub_time` has passed (`pending_delete`)."""

    ACTIVE = "active"
    PENDING_DELETE = "pending_delete"
    DELETING = "deleting"
    DELETED = "deleted"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


DISK_FORMATS: Final = (
    "ami",
    "ari",
    "aki",
    "vhd",
    "vhdx",
    "vmdk",
    "raw",
    "qcow2",
    "vdi",
    "iso",
    "ploop",
)
# `compressed` arrived in Train for Cinder's compressed volume uploads.
CONTAINER_FORMATS: Final = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

KEY_DELETION_POLICIES: Final = ("on_image_deletion", "do_not_delete")

_S = ImageStatus
# Which status may follow which. Every status change goes through `transition`: the images
# repository checks each of its status writes against this table. A delete may be delayed from
# any live status (pending_delete: whatever data the image has waits for the scrubber).
TRANSITIONS: Final[dict[ImageStatus, frozenset[ImageStatus]]] = {
    _S.QUEUED: frozenset(
        {_S.SAVING, _S.UPLOADING, _S.IMPORTING, _S.ACTIVE, _S.PENDING_DELETE, _S.DELETED}
    ),
    _S.SAVING: frozenset({_S.ACTIVE, _S.KILLED, _S.QUEUED, _S.PENDING_DELETE, _S.DELETED}),
    _S.UPLOADING: frozenset({_S.IMPORTING, _S.QUEUED, _S.PENDING_DELETE, _S.DELETED}),
    _S.IMPORTING: frozenset({_S.ACTIVE, _S.QUEUED, _S.PENDING_DELETE, _S.DELETED}),
    _S.ACTIVE: frozenset({_S.PENDING_DELETE, _S.DELETED, _S.DEACTIVATED}),
    _S.DEACTIVATED: frozenset({_S.ACTIVE, _S.PENDING_DELETE, _S.DELETED}),
    _S.KILLED: frozenset({_S.PENDING_DELETE, _S.DELETED}),
    _S.PENDING_DELETE: frozenset({_S.ACTIVE, _S.DELETED}),
    _S.DELETED: frozenset(),
}


class ImageData(TypedDict, total=False):
    """What is recorded about an image's data (its size, hashes and formats); a key left
    out leaves that column as it is, a None clears it."""

    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    disk_format: str | None
    container_format: str | None


def transition(current: ImageStatus, target: ImageStatus) -> ImageStatus:
    """Return `target` if the table allows the move, else raise InvalidTransition."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target


def deactivation(current: str, action: str) -> ImageStatus | None:
    """The status `deactivate`/`reactivate` moves an image to, or None when it is already
    there (Glance makes both idempotent); any other status refuses, with 403 as in Glance."""
    here, there = (
        (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED)
        if action == "deactivate"
        else (ImageStatus.DEACTIVATED, ImageStatus.ACTIVE)
    )
    if current == there:
        return None
    if current != here:
        raise Forbidden(f"Not allowed to {action} image in status '{current}'")
    return transition(here, there)


def check_downloadable(status: str, is_admin: bool) -> None:
    """Only admins read the data of a deactivated image."""
    if status == ImageStatus.DEACTIVATED and not is_admin:
        raise Forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
        )


READ_ONLY_ATTRIBUTES: Final = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "direct_url",
        "self",
        "file",
        "schema",
        "stores",
    }
)
# Columns Glance keeps for itself; clients may neither set nor filter on them.
RESERVED_ATTRIBUTES: Final = frozenset({"deleted", "deleted_at", "location"})
# Extra-property prefix Glance keeps for its own bookkeeping (import locks and the like).
RESERVED_PROPERTY_PREFIX: Final = "os_glance"

# Attributes a client may set on create or change by PATCH.
MUTABLE_ATTRIBUTES: Final = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "min_disk",
        "min_ram",
        "disk_format",
        "container_format",
    }
)

MAX_NAME_LENGTH: Final = 255
MAX_TAG_LENGTH: Final = 255
MAX_PROPERTY_NAME_LENGTH: Final = 255
MAX_PROPERTY_VALUE_LENGTH: Final = 65535
