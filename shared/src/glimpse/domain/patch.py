"""JSON-patch on an image (Glance's openstack-images-v2.x-json-patch media types).

Operations apply to a copy of the image's client-visible state; nothing is written unless every
operation succeeds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

from glimpse.domain import attributes
from glimpse.domain.errors import Conflict, Forbidden, InvalidInput, UnsupportedMediaType

PATCH_MEDIA_TYPES: Final = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)


class PatchOp(enum.StrEnum):
    ADD = "add"
    REPLACE = "replace"
    REMOVE = "remove"


LOCATIONS: Final = "locations"


@dataclass(frozen=True, slots=True)
class Operation:
    op: PatchOp
    name: str  # the decoded top-level member the path names
    value: Any = None
    position: str | None = None  # "/locations/<n>" or "/locations/-" only


@dataclass(slots=True)
class ImageState:
    """What a patch may change: core attributes, extra properties and tags."""

    core: dict[str, Any]
    properties: dict[str, str]
    tags: list[str]
    changed_core: set[str] = field(default_factory=set)
    # Location changes need the stores, so the service applies them (in order) after the rest.
    location_ops: list[Operation] = field(default_factory=list)


def check_media_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in PATCH_MEDIA_TYPES:
        allowed = ", ".join(PATCH_MEDIA_TYPES)
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {media_type or '(none)'}; expected one of: {allowed}",
            accept_patch=allowed,
        )


def _decode_path(path: object) -> tuple[str, str | None]:
    """The member a path names and, for `/locations/<pos>`, the position."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInput(f'Pointer `{path}` does not start with "/".')
    parts = path[1:].split("/")
    position = None
    if len(parts) == 2 and parts[0] == LOCATIONS:  # noqa: PLR2004 -- /locations/<position>
        position = parts.pop()
    if len(parts) != 1 or not parts[0] or position == "":
        raise InvalidInput(f"Nested paths are not allowed: `{path}`")
    token = parts[0]
    if "~" in token.replace("~0", "").replace("~1", ""):
        raise InvalidInput(f"Pointer `{path}` contains an invalid escape sequence")
    return token.replace("~1", "/").replace("~0", "~"), position


def parse_operations(document: object) -> list[Operation]:
    """Accept both the 2.1 shape {"op": "add", "path": ...} and the 2.0 shape {"add": ...}."""
    if not isinstance(document, list):
        raise InvalidInput("Request body must be a JSON array of operation objects.")
    operations = []
    for raw in document:
        if not isinstance(raw, dict):
            raise InvalidInput("Operations must be JSON objects.")
        if "op" in raw:
            op_name, path = raw["op"], raw.get("path")
        else:
            found = [name for name in PatchOp if name.value in raw]
            if len(found) != 1:
                raise InvalidInput(
                    "Operation objects must contain exactly one of add/replace/remove"
                )
            op_name, path = found[0].value, raw[found[0].value]
        try:
            op = PatchOp(op_name)
        except ValueError:
            raise InvalidInput(f"Invalid operation: `{op_name}`") from None
        if op is not PatchOp.REMOVE and "value" not in raw:
            raise InvalidInput(f"Operation `{op}` requires a member named `value`.")
        name, position = _decode_path(path)
        operations.append(Operation(op, name, raw.get("value"), position))
    return operations


def apply(state: ImageState, operations: list[Operation]) -> None:
    for operation in operations:
        _apply_one(state, operation)


def _apply_one(state: ImageState, operation: Operation) -> None:
    name, op = operation.name, operation.op
    if name == "tags":
        if op is PatchOp.REMOVE:
            state.tags = []
        else:
            state.tags = attributes.validate_tags(operation.value)
        return
    if name == LOCATIONS:
        state.location_ops.append(operation)
        return
    attributes.check_writable(name)
    if name in state.core:
        if not attributes.is_mutable_core(name):
            raise Forbidden(f"Attribute '{name}' is read-only.")
        if op is PatchOp.REMOVE:
            raise Forbidden(f"Attribute '{name}' can't be removed.")
        state.core[name] = attributes.validate_core(name, operation.value)
        state.changed_core.add(name)
        return
    if op is PatchOp.REMOVE:
        if name not in state.properties:
            raise Conflict(f"Property {name} does not exist.")
        del state.properties[name]
        return
    if op is PatchOp.REPLACE and name not in state.properties:
        raise Conflict(f"Property {name} does not exist.")
    state.properties[name] = attributes.validate_property(name, operation.value)
