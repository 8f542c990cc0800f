"""The import request contract: parsed from a POST /import body with Glance's messages, and
from task rows of every shape this service has written (they are never rewritten)."""

from __future__ import annotations

from typing import Any

import pytest

from glimpse.domain.errors import InvalidInput
from glimpse.domain.imports import (
    GlanceSource,
    ImportMethod,
    ImportOptions,
    ImportRequest,
    ImportTaskInput,
    MetadataBefore,
)

MULTI = ImportOptions(
    methods=("glance-direct", "web-download", "copy-image", "glance-download"),
    multistore=True,
    default_store="a",
    writable=("a", "b"),
)
SINGLE = ImportOptions(
    methods=("glance-direct", "web-download"),
    multistore=False,
    default_store="file",
    writable=("file",),
)


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        ({}, None, "Import request requires a 'method' field with a 'name'."),
        ({"method": "glance-direct"}, None, "Import request requires a 'method' field"),
        ({"method": {"name": "copy-image"}}, None, "Import method copy-image is not enabled."),
        (
            {"method": {"name": "glance-download"}},
            None,
            "'glance_region' needs to be set for glance-download import method",
        ),
        (
            {"method": {"name": "glance-download", "glance_region": "r", "glance_image_id": "x"}},
            None,
            "Remote image id does not look like a UUID: x",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores": "yes"},
            None,
            "all_stores must be a boolean.",
        ),
        (
            {"method": {"name": "glance-direct"}, "stores": ["a"]},
            "b",
            "Only one of X-Image-Meta-Store header or stores may be given.",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores": True, "stores": ["a"]},
            None,
            "all_stores cannot be given with stores or the X-Image-Meta-Store header.",
        ),
        (
            {"method": {"name": "glance-direct"}, "stores": []},
            None,
            "stores must be a non-empty list of store identifiers.",
        ),
        (
            {"method": {"name": "glance-direct"}, "stores": ["a", 1]},
            None,
            "stores must be a non-empty list of store identifiers.",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores_must_succeed": 0},
            None,
            "all_stores_must_succeed must be a boolean.",
        ),
        (
            {"method": {"name": "web-download", "uri": 7}},
            None,
            "URI for web-download does not pass filtering: 7",
        ),
        (
            {"method": {"name": "web-download"}},
            None,
            "URI for web-download does not pass filtering: None",
        ),
    ],
)
def test_bad_bodies_are_refused_with_glances_messages(
    body: dict[str, Any], header: str | None, message: str
) -> None:
    options = SINGLE if body.get("method") == {"name": "copy-image"} else MULTI
    with pytest.raises(InvalidInput) as raised:
        ImportRequest.from_body(body, header, options)
    assert raised.value.message.startswith(message)


def test_a_body_resolves_its_stores() -> None:
    direct = {"method": {"name": "glance-direct", "uri": "ignored"}}
    assert ImportRequest.from_body(direct, None, MULTI) == ImportRequest(
        ImportMethod("glance-direct"), ("a",)
    )
    assert ImportRequest.from_body(direct, "b", MULTI).stores == ("b",)
    assert ImportRequest.from_body({**direct, "stores": ["b", "a", "b"]}, None, MULTI).stores == (
        "b",
        "a",
    )
    every = ImportRequest.from_body(
        {**direct, "all_stores": True, "all_stores_must_succeed": False}, None, MULTI
    )
    assert (every.stores, every.all_stores, every.all_stores_must_succeed) == (
        ("a", "b"),
        True,
        False,
    )
    # Without multi-store, as in Glance, the stores asked for are ignored.
    assert ImportRequest.from_body({**direct, "stores": ["x"]}, "y", SINGLE).stores == ("file",)


def test_the_task_input_json_keeps_its_format() -> None:
    body = {"method": {"name": "web-download", "uri": "http://example.test/x.img"}}
    request = ImportRequest.from_body(body, None, MULTI)
    task_input = ImportTaskInput("img", request, backend=("a",), user_roles=("member",))
    stored = {
        "image_id": "img",
        "import_req": {
            "method": {"name": "web-download", "uri": "http://example.test/x.img"},
            "stores": ["a"],
            "all_stores_must_succeed": True,
        },
        "backend": ["a"],
        "user_roles": ["member"],
    }
    assert task_input.to_json() == stored
    assert ImportTaskInput.from_task("api_image_import", stored) == task_input
    assert task_input.targets("z") == ("a",)


def test_admission_returns_a_new_request() -> None:
    request = ImportRequest(ImportMethod("copy-image"), ("a", "b"), all_stores=True)
    narrowed = request.with_stores(("b",))
    assert narrowed.stores == ("b",)
    assert request.stores == ("a", "b")
    assert narrowed.to_json()["stores"] == ["b"]


def test_rows_of_earlier_shapes_parse() -> None:
    # Written before user_roles was recorded, and by the Tasks API (its caller's input).
    old = ImportTaskInput.from_task(
        "api_image_import",
        {"image_id": "img", "import_req": {"method": {"name": "glance-direct"}}, "backend": ["a"]},
    )
    assert old.request == ImportRequest(ImportMethod("glance-direct"))
    assert (old.backend, old.user_roles) == (("a",), ())
    legacy = ImportTaskInput.from_task(
        "import",
        {"import_from": "http://example.test/a", "import_from_format": "raw"},
    )
    assert legacy.request.method == ImportMethod("web-download", "http://example.test/a")
    assert legacy.backend is None
    assert legacy.targets("file") == ("file",)
    odd = ImportTaskInput.from_task("api_image_import", {"import_req": "nonsense"})
    assert (odd.image_id, odd.request.method.name, odd.backend) == (None, "", None)


REMOTE_ID = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"


def test_glance_download_parameters_and_token_are_typed_fields() -> None:
    body = {
        "method": {"name": "glance-download", "glance_region": "R2", "glance_image_id": REMOTE_ID}
    }
    request = ImportRequest.from_body(body, None, MULTI)
    assert request.method.glance == GlanceSource(REMOTE_ID, "R2", "public")
    task_input = ImportTaskInput("img", request, backend=("a",), user_token="sealed")
    stored = task_input.to_json()
    assert stored["import_req"]["method"] == {
        "name": "glance-download",
        "glance_image_id": REMOTE_ID,
        "glance_region": "R2",
        "glance_service_interface": "public",
    }
    assert stored["user_token"] == "sealed"
    assert ImportTaskInput.from_task("api_image_import", stored) == task_input
    # No token, no key: the stored input keeps its earlier shape.
    assert "user_token" not in ImportTaskInput("img", request, backend=("a",)).to_json()


def test_metadata_before_keeps_what_the_first_run_found() -> None:
    before = MetadataBefore("raw", "bare", {"os_distro": None})
    again = before.keeping({"os_distro": "rhel", "hw_x": "1"})
    assert again.properties == {"os_distro": None, "hw_x": "1"}
    stored = {
        "image_id": "img",
        "import_req": {"method": {"name": "glance-download"}},
        "glance_download_before": again.to_json(),
    }
    parsed = ImportTaskInput.from_task("api_image_import", stored)
    assert parsed.metadata_before == again
    assert parsed.request.method.glance is None  # the worker refuses it, saying why
