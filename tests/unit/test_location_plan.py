"""JSON-patch on /locations as list arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from glimpse.domain import patch
from glimpse.domain.errors import Conflict, Forbidden, InvalidInput
from glimpse.domain.locations import LocationValue, check_visible, plan


def ops(*raw: dict[str, Any]) -> list[patch.Operation]:
    return patch.parse_operations(list(raw))


def loc(url: str, **validation: str) -> dict[str, Any]:
    value: dict[str, Any] = {"url": url, "metadata": {}}
    if validation:
        value["validation_data"] = validation
    return value


CURRENT = [LocationValue("http://a/1"), LocationValue("http://b/2")]


def test_paths_name_positions() -> None:
    parsed = ops({"op": "add", "path": "/locations/-", "value": loc("u")})
    assert (parsed[0].name, parsed[0].position) == ("locations", "-")
    with pytest.raises(InvalidInput, match="Nested paths"):
        ops({"op": "add", "path": "/name/0", "value": "x"})
    with pytest.raises(InvalidInput, match="Nested paths"):
        ops({"op": "add", "path": "/locations/", "value": loc("u")})


def test_add_insert_remove_replace() -> None:
    added = plan(
        CURRENT, ops({"op": "add", "path": "/locations/0", "value": loc("http://c/3")}), "active"
    )
    assert [v.url for v in added.result] == ["http://c/3", "http://a/1", "http://b/2"]
    assert [v.url for v in added.added] == ["http://c/3"]
    assert added.removed == []
    removed = plan(CURRENT, ops({"op": "remove", "path": "/locations/1"}), "active")
    assert [v.url for v in removed.result] == ["http://a/1"]
    assert removed.removed == ["http://b/2"]
    # Replacing keeps the URLs and may change their metadata and order, nothing else.
    swapped = [loc("http://b/2"), {"url": "http://a/1", "metadata": {"date": "2015-10-15"}}]
    replaced = plan(
        CURRENT, ops({"op": "replace", "path": "/locations", "value": swapped}), "active"
    )
    assert [(v.url, v.metadata) for v in replaced.result] == [
        ("http://b/2", {}),
        ("http://a/1", {"date": "2015-10-15"}),
    ]
    assert (replaced.added, replaced.removed) == ([], [])
    for other in ([loc("http://b/2")], [loc("http://b/2"), loc("http://d/4")]):
        with pytest.raises(InvalidInput, match="Original locations is not empty"):
            plan(CURRENT, ops({"op": "replace", "path": "/locations", "value": other}), "active")


@pytest.mark.parametrize(
    ("raw", "status", "error", "message"),
    [
        (
            {"op": "add", "path": "/locations/5", "value": loc("x")},
            "active",
            InvalidInput,
            "position",
        ),
        (
            {"op": "add", "path": "/locations/-", "value": {"url": "x"}},
            "active",
            InvalidInput,
            "metadata",
        ),
        (
            {"op": "add", "path": "/locations/-", "value": loc("http://a/1")},
            "active",
            InvalidInput,
            "Duplicate",
        ),
        (
            {"op": "add", "path": "/locations/-", "value": loc("x")},
            "saving",
            Conflict,
            "status is saving",
        ),
        ({"op": "remove", "path": "/locations/9"}, "active", InvalidInput, "position"),
        ({"op": "remove", "path": "/locations/0"}, "queued", Conflict, "remove locations"),
        (
            {"op": "replace", "path": "/locations", "value": []},
            "active",
            Forbidden,
            "last location",
        ),
        (
            {"op": "replace", "path": "/locations/0", "value": []},
            "active",
            InvalidInput,
            "whole list",
        ),
    ],
)
def test_refusals(raw: dict[str, Any], status: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        plan(CURRENT, ops(raw), status)


def test_last_location_cannot_be_removed() -> None:
    with pytest.raises(Forbidden, match="last location"):
        plan([LocationValue("http://a/1")], ops({"op": "remove", "path": "/locations/0"}), "active")


def test_validation_data_must_agree() -> None:
    two = ops(
        {"op": "add", "path": "/locations/-", "value": loc("http://c/3", checksum="aa")},
        {"op": "add", "path": "/locations/-", "value": loc("http://d/4", checksum="bb")},
    )
    with pytest.raises(Conflict, match="Conflicting values for checksum"):
        plan([], two, "queued")
    one = plan([], two[:1], "queued")
    assert one.validation_data == {"checksum": "aa"}


def test_hidden_locations_cannot_be_patched() -> None:
    check_visible([], show_multiple_locations=False)
    with pytest.raises(Forbidden, match="not allowed to remove locations"):
        check_visible(ops({"op": "remove", "path": "/locations/0"}), show_multiple_locations=False)
    check_visible(ops({"op": "remove", "path": "/locations/0"}), show_multiple_locations=True)
