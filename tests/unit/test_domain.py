"""Pure domain rules: transitions, attributes, JSON-patch, list parameters."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glimpse.domain import attributes, patch
from glimpse.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    ReservedAttribute,
    UnsupportedMediaType,
)
from glimpse.domain.images import TRANSITIONS, ImageStatus, transition
from glimpse.domain.listing import Op, SortDir, parse_in, parse_list_query, parse_sort


def test_every_status_has_a_transition_row() -> None:
    assert set(TRANSITIONS) == set(ImageStatus)
    assert TRANSITIONS[ImageStatus.DELETED] == frozenset()


@pytest.mark.parametrize(
    ("current", "target"),
    [("queued", "saving"), ("saving", "active"), ("saving", "queued"), ("active", "deleted")],
)
def test_allowed_transitions(current: str, target: str) -> None:
    assert transition(ImageStatus(current), ImageStatus(target)) == target


@pytest.mark.parametrize(
    ("current", "target"),
    [("active", "saving"), ("deleted", "active"), ("queued", "deactivated"), ("killed", "active")],
)
def test_refused_transitions(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition, match=f"from {current} to {target}"):
        transition(ImageStatus(current), ImageStatus(target))


def test_attribute_validation() -> None:
    assert attributes.validate_core("name", None) is None
    assert attributes.validate_core("min_ram", 0) == 0
    assert attributes.validate_core("owner", "p") == "p"
    with pytest.raises(InvalidInput):
        attributes.validate_core("min_ram", value=True)
    with pytest.raises(InvalidInput):
        attributes.validate_core("owner", 5)
    with pytest.raises(AssertionError):
        attributes.validate_core("size", 1)
    assert attributes.validate_image_id("AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA") == (
        "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
    )
    with pytest.raises(InvalidInput):
        attributes.validate_property("", "x")
    with pytest.raises(InvalidInput):
        attributes.validate_property("big", "x" * 70_000)
    with pytest.raises(InvalidInput):
        attributes.validate_tag("")
    assert attributes.validate_tags(["a", "a", "b"]) == ["a", "b"]


def _state() -> patch.ImageState:
    return patch.ImageState(core={"name": "n", "min_ram": 0}, properties={"p": "1"}, tags=["t"])


def test_patch_parse_both_shapes() -> None:
    ops = patch.parse_operations(
        [{"op": "add", "path": "/a~0b~1c", "value": "v"}, {"remove": "/p"}]
    )
    assert ops == [
        patch.Operation(patch.PatchOp.ADD, "a~b/c", "v"),
        patch.Operation(patch.PatchOp.REMOVE, "p", None),
    ]


@pytest.mark.parametrize(
    "document",
    [
        {"op": "add"},
        ["not an object"],
        [{"op": "test", "path": "/a", "value": 1}],
        [{"op": "add", "path": "/a"}],
        [{"op": "add", "path": "/", "value": 1}],
        [{"op": "add", "path": "/a~2", "value": 1}],
        [{"add": "/a", "remove": "/b", "value": 1}],
        [{"op": "add", "path": 5, "value": 1}],
    ],
)
def test_patch_parse_errors(document: object) -> None:
    with pytest.raises(InvalidInput):
        patch.parse_operations(document)


def test_patch_apply() -> None:
    state = _state()
    patch.apply(
        state,
        patch.parse_operations(
            [
                {"op": "add", "path": "/name", "value": "m"},
                {"op": "remove", "path": "/tags"},
                {"op": "add", "path": "/q", "value": "2"},
            ]
        ),
    )
    assert state.core["name"] == "m"
    assert state.changed_core == {"name"}
    assert state.tags == []
    assert state.properties == {"p": "1", "q": "2"}


@pytest.mark.parametrize(
    ("op", "error"),
    [
        ({"op": "remove", "path": "/nope"}, Conflict),
        ({"op": "replace", "path": "/nope", "value": "x"}, Conflict),
        ({"op": "remove", "path": "/name"}, Forbidden),
        ({"op": "add", "path": "/os_glance_x", "value": "x"}, ReservedAttribute),
        ({"op": "replace", "path": "/min_ram", "value": "lots"}, InvalidInput),
    ],
)
def test_patch_apply_errors(op: dict[str, object], error: type[Exception]) -> None:
    state = _state()
    with pytest.raises(error):
        patch.apply(state, patch.parse_operations([op]))
    assert state.properties == {"p": "1"}


def test_patch_media_types() -> None:
    patch.check_media_type("application/openstack-images-v2.1-json-patch; charset=UTF-8")
    patch.check_media_type("application/openstack-images-v2.0-json-patch")
    with pytest.raises(UnsupportedMediaType):
        patch.check_media_type(None)


def test_parse_in() -> None:
    assert parse_in('in:a,"b,c",d') == ("a", "b,c", "d")
    assert parse_in("eq:x:y") == ("x:y",)
    assert parse_in("plain") == ("plain",)
    with pytest.raises(InvalidInput):
        parse_in('in:"open')


@given(st.lists(st.text(alphabet="abc ,:", max_size=5), min_size=1, max_size=4))
def test_parse_in_round_trips_quoted_values(values: list[str]) -> None:
    quoted = ",".join('"' + v + '"' for v in values if '"' not in v)
    assert parse_in("in:" + quoted) == tuple(values)


def test_parse_sort() -> None:
    assert parse_sort("name:asc,size", [], []) == (("name", SortDir.ASC), ("size", SortDir.DESC))
    assert parse_sort(None, ["name", "size"], ["asc"]) == (
        ("name", SortDir.ASC),
        ("size", SortDir.ASC),
    )
    assert parse_sort(None, [], []) == (("created_at", SortDir.DESC),)
    with pytest.raises(InvalidInput):
        parse_sort(None, ["name"], ["asc", "desc"])


def test_parse_list_query() -> None:
    query = parse_list_query(
        [
            ("name", "in:a,b"),
            ("os_distro", "in:x"),
            ("tag", "t1"),
            ("tag", "t2"),
            ("created_at", "gte:2020-01-01T00:00:00Z"),
            ("updated_at", "2020-01-01T00:00:00+01:00"),
            ("visibility", "all"),
            ("size_min", "3"),
        ],
        default_limit=25,
        max_limit=1000,
    )
    assert query.columns == {"name": ("a", "b")}
    assert query.properties == {"os_distro": ("in:x",)}
    assert query.tags == ("t1", "t2")
    assert query.visibility == "all"
    assert query.size_min == 3
    assert query.limit == 25
    assert [(t.column, t.op, t.value) for t in query.times] == [
        ("created_at", Op.GTE, datetime(2020, 1, 1)),  # noqa: DTZ001 -- stored naive UTC
        ("updated_at", Op.EQ, datetime(2019, 12, 31, 23)),  # noqa: DTZ001 -- naive, as parsed
    ]
    with pytest.raises(ReservedAttribute):
        parse_list_query([("deleted", "true")], default_limit=25, max_limit=1000)
