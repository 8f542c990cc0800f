"""Validation of client-supplied image attributes, shared by create and PATCH."""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from glimpse.domain.errors import InvalidInput, ReadOnlyAttribute, ReservedAttribute
from glimpse.domain.images import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    KEY_DELETION_POLICIES,
    MAX_NAME_LENGTH,
    MAX_PROPERTY_NAME_LENGTH,
    MAX_PROPERTY_VALUE_LENGTH,
    MAX_TAG_LENGTH,
    MUTABLE_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    RESERVED_PROPERTY_PREFIX,
    Visibility,
)

_MAX_INT: Final = 2**31 - 1
_OWNER_MAX: Final = 255
_UUID_RE: Final = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def check_writable(name: str) -> None:
    """Raise 403 for attributes no client may write (Glance answers 403, not 400)."""
    if name in READ_ONLY_ATTRIBUTES:
        raise ReadOnlyAttribute(name)
    if name in RESERVED_ATTRIBUTES or name.startswith(RESERVED_PROPERTY_PREFIX):
        raise ReservedAttribute(name)


def _enum(name: str, value: object, allowed: tuple[str, ...], *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(allowed)
        raise InvalidInput(f"Invalid value '{value}' for {name}: expected one of {choices}")
    return value


def _non_negative_int(name: str, value: object) -> int:
    # bool is an int subclass in Python; JSON `true` is not a valid disk size.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
        raise InvalidInput(f"Invalid value '{value}' for {name}: expected an integer >= 0")
    return value


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"Invalid value '{value}' for {name}: expected a boolean")
    return value


def validate_core(name: str, value: Any) -> Any:  # noqa: ANN401, PLR0911 -- JSON values; a case each
    """Validate one core attribute a client sets; return the value to store."""
    match name:
        case "name":
            if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_LENGTH):
                raise InvalidInput(
                    f"Invalid value for name: expected a string of at most {MAX_NAME_LENGTH}"
                )
            return value
        case "disk_format":
            return _enum(name, value, DISK_FORMATS, nullable=True)
        case "container_format":
            return _enum(name, value, CONTAINER_FORMATS, nullable=True)
        case "visibility":
            return _enum(name, value, tuple(v.value for v in Visibility), nullable=False)
        case "min_disk" | "min_ram":
            return _non_negative_int(name, value)
        case "protected" | "os_hidden":
            return _boolean(name, value)
        case "owner":
            if value is not None and (not isinstance(value, str) or len(value) > _OWNER_MAX):
                raise InvalidInput("Invalid value for owner: expected a string")
            return value
    msg = f"Unknown core attribute {name}"
    raise AssertionError(msg)


def validate_property(name: str, value: Any) -> str:  # noqa: ANN401 -- JSON values are untyped
    """Validate an extra property; Glance keeps every extra property as a string."""
    check_writable(name)
    if not name or len(name) > MAX_PROPERTY_NAME_LENGTH:
        raise InvalidInput(f"Invalid property name '{name}'")
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid value for property {name}: expected a string")
    if len(value) > MAX_PROPERTY_VALUE_LENGTH:
        raise InvalidInput(f"Value of property {name} is too long")
    if name == "cinder_encryption_key_deletion_policy":
        _enum(name, value, KEY_DELETION_POLICIES, nullable=False)
    return value


def validate_tags(value: Any) -> list[str]:  # noqa: ANN401 -- JSON values are untyped
    if not isinstance(value, list):
        raise InvalidInput("Invalid value for tags: expected a list of strings")
    # A dict keeps the first occurrence of each tag in order, in linear time: a body may
    # hold a hundred thousand tags.
    return list(dict.fromkeys(validate_tag(tag) for tag in value))


def validate_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
        raise InvalidInput(f"Invalid tag '{tag}': expected 1 to {MAX_TAG_LENGTH} characters")
    return tag


def validate_image_id(value: object) -> str:
    if not isinstance(value, str) or not _UUID_RE.match(value):
        raise InvalidInput(f"Invalid image id '{value}': expected a UUID")
    return str(uuid.UUID(value))


def is_mutable_core(name: str) -> bool:
    return name in MUTABLE_ATTRIBUTES
