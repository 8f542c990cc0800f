"""The JSON-patch operations on `/locations` (show_multiple_locations), applied to a list.

Pure list arithmetic: which locations the image should have afterwards. Checking URLs against
stores and writing rows is the location service's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from glimpse.domain.errors import Conflict, Forbidden, InvalidInput
from glimpse.domain.patch import Operation, PatchOp

_VERBS = {PatchOp.ADD: "add", PatchOp.REMOVE: "remove", PatchOp.REPLACE: "update"}


@dataclass(frozen=True, slots=True)
class LocationValue:
    url: str
    metadata: dict[str, Any] = field(default_factory=dict)
    validation_data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LocationPlan:
    """The image's locations after the patch, and what changed."""

    result: list[LocationValue]
    added: list[LocationValue]
    removed: list[str]
    validation_data: dict[str, Any]


def check_visible(operations: list[Operation], *, show_multiple_locations: bool) -> None:
    if operations and not show_multiple_locations:
        verb = _VERBS[operations[0].op]
        raise Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")


def parse_value(value: object) -> LocationValue:
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise InvalidInput("A location must be an object with a url and metadata.")
    if not isinstance(value.get("metadata"), dict):
        raise InvalidInput("A location must be an object with a url and metadata.")
    validation = value.get("validation_data")
    if validation is not None and not isinstance(validation, dict):
        raise InvalidInput("validation_data must be an object.")
    unknown = set(value) - {"url", "metadata", "validation_data"}
    if unknown:
        raise InvalidInput(f"Unknown location members: {', '.join(sorted(unknown))}")
    return LocationValue(value["url"], dict(value["metadata"]), validation)


def _position(raw: str | None, size: int, *, for_add: bool) -> int:
    verb = "adding" if for_add else "removing"
    if for_add and raw == "-":
        return size
    position = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else -1
    limit = size if for_add else size - 1
    if not 0 <= position <= limit:
        raise InvalidInput(f"Invalid position for {verb} a location.")
    return position


def _merged_validation(values: list[LocationValue]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for value in values:
        for key, item in (value.validation_data or {}).items():
            if merged.get(key, item) != item:
                raise Conflict(f"Conflicting values for {key}")
            merged[key] = item
    return merged


def _known(value: LocationValue, aliases: Mapping[str, str]) -> LocationValue:
    """`value` with a URL as the API showed it (credentials masked) turned back into the
    location it stands for, so a client may send back the list it read."""
    url = aliases.get(value.url, value.url)
    return value if url == value.url else replace(value, url=url)


def plan(
    current: list[LocationValue],
    operations: list[Operation],
    status: str,
    aliases: Mapping[str, str] | None = None,
) -> LocationPlan:
    """Apply `operations` in order to `current` (the image's locations); `aliases` maps each
    URL as shown to the location it stands for."""
    aliases = aliases or {}
    result = list(current)
    for operation in operations:
        verb = _VERBS[operation.op]
        allowed = ("active",) if operation.op is PatchOp.REMOVE else ("active", "queued")
        if status not in allowed:
            raise Conflict(f"It's not allowed to {verb} locations if image status is {status}.")
        if operation.op is PatchOp.ADD:
            position = _position(operation.position, len(result), for_add=True)
            result.insert(position, _known(parse_value(operation.value), aliases))
        elif operation.op is PatchOp.REMOVE:
            if len(result) == 1:
                raise Forbidden("Cannot remove last location in the image.")
            result.pop(_position(operation.position, len(result), for_add=False))
        else:
            if operation.position is not None or not isinstance(operation.value, list):
                raise InvalidInput("Locations can only be replaced as a whole list.")
            replacement = [_known(parse_value(value), aliases) for value in operation.value]
            # A non-empty list may only be replaced by the same URLs (new metadata), as in Glance:
            # adding and removing have their own operations and policies.
            new_urls = sorted(value.url for value in replacement)
            if result and replacement and new_urls != sorted(value.url for value in result):
                raise InvalidInput("Original locations is not empty.")
            result = replacement
    urls = [value.url for value in result]
    if len(set(urls)) != len(urls):
        raise InvalidInput("Duplicate locations are not allowed.")
    if status == "active" and not result:
        raise Forbidden("Cannot remove last location in the image.")
    before = {value.url for value in current}
    added = [value for value in result if value.url not in before]
    removed = [value.url for value in current if value.url not in set(urls)]
    return LocationPlan(result, added, removed, _merged_validation(added))
