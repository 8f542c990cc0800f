"""The image and images JSON schemas served under /v2/schemas.

Clients (python-glanceclient in particular) build their models and CLI options from these, so
property names, types, enums and patterns match Glance's; the descriptions are our own.
"""

from __future__ import annotations

from typing import Any, Final

from glimpse.domain.images import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    KEY_DELETION_POLICIES,
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    ImageStatus,
)

UUID_PATTERN: Final = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
_STATUS_ORDER: Final = (
    ImageStatus.QUEUED,
    ImageStatus.SAVING,
    ImageStatus.ACTIVE,
    ImageStatus.KILLED,
    ImageStatus.DELETED,
    ImageStatus.UPLOADING,
    ImageStatus.IMPORTING,
    ImageStatus.PENDING_DELETE,
    ImageStatus.DEACTIVATED,
)


def _nullable(kind: str, description: str, **extra: Any) -> dict[str, Any]:  # noqa: ANN401 -- JSON values
    return {"type": ["null", kind], "description": description, **extra}


def _read_only(kind: str | list[str], description: str, **extra: Any) -> dict[str, Any]:  # noqa: ANN401 -- JSON values
    return {"type": kind, "readOnly": True, "description": description, **extra}


def _base_properties() -> dict[str, Any]:
    return {
        "id": {
            "type": "string",
            "description": "Image identifier (a UUID)",
            "pattern": UUID_PATTERN,
        },
        "name": _nullable("string", "Human-readable image name", maxLength=MAX_NAME_LENGTH),
        "status": _read_only("string", "Lifecycle status", enum=[s.value for s in _STATUS_ORDER]),
        "visibility": {
            "type": "string",
            "description": "Who may see and use the image",
            "enum": ["community", "public", "private", "shared"],
        },
        "protected": {"type": "boolean", "description": "Protected images cannot be deleted."},
        "os_hidden": {
            "type": "boolean",
            "description": "Hidden images are left out of default image lists.",
        },
        "checksum": _read_only(["null", "string"], "MD5 of the image data", maxLength=32),
        "os_hash_algo": _read_only(
            ["null", "string"], "Hash algorithm of os_hash_value", maxLength=64
        ),
        "os_hash_value": _read_only(
            ["null", "string"], "Hex digest of the image data (os_hash_algo)", maxLength=128
        ),
        "owner": _nullable("string", "Project that owns the image", maxLength=255),
        "size": _read_only(["null", "integer"], "Bytes of image data"),
        "virtual_size": _read_only(["null", "integer"], "Virtual disk size in bytes"),
        "container_format": _nullable(
            "string", "Container format of the data", enum=[None, *CONTAINER_FORMATS]
        ),
        "disk_format": _nullable("string", "Disk format of the data", enum=[None, *DISK_FORMATS]),
        "created_at": _read_only("string", "When the image was created"),
        "updated_at": _read_only("string", "When the image last changed"),
        "tags": {
            "type": "array",
            "description": "Free-form labels",
            "items": {"type": "string", "maxLength": MAX_TAG_LENGTH},
        },
        "direct_url": _read_only("string", "Location of the data in its store"),
        "min_ram": {"type": "integer", "description": "RAM in MB needed to boot the image"},
        "min_disk": {"type": "integer", "description": "Disk in GB needed to boot the image"},
        "self": _read_only("string", "URL of this image"),
        "file": _read_only("string", "URL of this image's data"),
        "stores": _read_only("string", "Comma-separated ids of the stores holding the data"),
        "schema": _read_only("string", "URL of this schema"),
        "locations": {
            "type": "array",
            "description": "Locations of the image data",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Hashes the data at the location must match",
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
        },
    }


def _common_properties() -> dict[str, Any]:
    """Well-known extra properties (not columns), marked is_base: false as clients expect."""

    def custom(definition: dict[str, Any]) -> dict[str, Any]:
        return {**definition, "is_base": False}

    return {
        "kernel_id": custom(
            _nullable("string", "Kernel image id for AMI-style images", pattern=UUID_PATTERN)
        ),
        "ramdisk_id": custom(
            _nullable("string", "Ramdisk image id for AMI-style images", pattern=UUID_PATTERN)
        ),
        "instance_uuid": custom({"type": "string", "description": "Instance this came from"}),
        "architecture": custom({"type": "string", "description": "CPU architecture"}),
        "os_distro": custom({"type": "string", "description": "Operating system distribution"}),
        "os_version": custom({"type": "string", "description": "Operating system version"}),
        "description": custom({"type": "string", "description": "Longer description"}),
        "cinder_encryption_key_id": custom(
            {"type": "string", "description": "Key Manager id of the volume encryption key"}
        ),
        "cinder_encryption_key_deletion_policy": custom(
            {
                "type": "string",
                "description": "Whether deleting the image deletes cinder_encryption_key_id",
                "enum": list(KEY_DELETION_POLICIES),
            }
        ),
    }


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": {**_base_properties(), **_common_properties()},
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
