"""Every route that takes a JSON document reads at most MAX_JSON_BODY bytes of it: past that
it answers 413 in Glance's error format, whether the body announces its length or streams
without one, and nothing changes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import pytest

from glimpse_api.app import create_app
from glimpse_api.schemas.body import MAX_JSON_BODY
from personas import new_image

PATCH_TYPE: Final = "application/openstack-images-v2.1-json-patch"
MEMBER: Final = "a0f5c8e4-member-project"

TASK: Final = {
    "type": "import",
    "input": {
        "import_from": "http://93.184.215.14/x",
        "import_from_format": "raw",
        "image_properties": {"disk_format": "raw", "container_format": "bare"},
    },
}
# (method, route path, a small valid document): every route that reads a JSON body.
JSON_ROUTES: Final[list[tuple[str, str, bytes]]] = [
    ("POST", "/v2/images", b'{"name": "x"}'),
    ("PATCH", "/v2/images/{image_id}", b'[{"op": "replace", "path": "/name", "value": "y"}]'),
    ("POST", "/v2/images/{image_id}/members", b'{"member": "m"}'),
    ("PUT", "/v2/images/{image_id}/members/{member_id}", b'{"status": "accepted"}'),
    ("POST", "/v2/images/{image_id}/locations", b'{"url": "http://93.184.215.14/x"}'),
    ("POST", "/v2/images/{image_id}/import", b'{"method": {"name": "glance-direct"}}'),
    ("POST", "/v2/tasks", json.dumps(TASK).encode()),
    ("POST", "/v2/metadefs/namespaces", b'{"namespace": "OS::Big"}'),
    ("PUT", "/v2/metadefs/namespaces/{namespace}", b'{"namespace": "OS::Big"}'),
    ("POST", "/v2/metadefs/namespaces/{namespace}/objects", b'{"name": "o"}'),
    ("PUT", "/v2/metadefs/namespaces/{namespace}/objects/{object_name}", b'{"name": "o"}'),
    ("POST", "/v2/metadefs/namespaces/{namespace}/properties", b'{"name": "p", "type": "string"}'),
    (
        "PUT",
        "/v2/metadefs/namespaces/{namespace}/properties/{property_name}",
        b'{"name": "p", "type": "string"}',
    ),
    (
        "POST",
        "/v2/metadefs/namespaces/{namespace}/resource_types",
        b'{"name": "OS::Glance::Image"}',
    ),
    ("POST", "/v2/metadefs/namespaces/{namespace}/tags", b'{"tags": [{"name": "t"}]}'),
    ("PUT", "/v2/metadefs/namespaces/{namespace}/tags/{tag_name}", b'{"name": "t"}'),
]
ROUTE_IDS: Final = [f"{method} {path}" for method, path, _ in JSON_ROUTES]


def padded(document: bytes) -> bytes:
    """`document` grown past the cap with whitespace: still valid JSON, just too long."""
    return document[:-1] + b" " * MAX_JSON_BODY + document[-1:]


async def streamed(body: bytes) -> AsyncIterator[bytes]:
    """The body in 64 KiB pieces, sent without Content-Length (chunked)."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def app_routes(make_settings: Any) -> list[Any]:
    """Every route of the app, through included routers too."""
    app = create_app(make_settings(enabled_backends="file:file"))
    found = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        found.extend(contexts() if contexts is not None else [route])
    return found


def reads_json(route: Any) -> bool:
    """Whether the route's endpoint reads a JSON document (through the capped reader or not)."""
    names = getattr(getattr(route, "endpoint", None), "__code__", None)
    used = set(names.co_names) if names is not None else set()
    return bool(used & {"read_json", "read_json_object", "json"})


def test_the_table_names_every_route_that_reads_json(make_settings: Any) -> None:
    listed = {(method, path) for method, path, _ in JSON_ROUTES}
    routes = app_routes(make_settings)
    found = {
        (method, route.path) for route in routes if reads_json(route) for method in route.methods
    }
    assert found == listed
    # No route has FastAPI parse a body model for it: that would bypass the capped reader.
    assert [route.path for route in routes if getattr(route, "body_field", None)] == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "path", "document"), JSON_ROUTES, ids=ROUTE_IDS)
async def test_a_json_body_past_the_cap_is_413(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    document: bytes,
    chunked: bool,
) -> None:
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    url = path.format(
        image_id=image_id,
        member_id=MEMBER,
        namespace="OS::Big",
        object_name="o",
        property_name="p",
        tag_name="t",
    )
    content_type = PATCH_TYPE if method == "PATCH" else "application/json"
    body = padded(document)
    response = await client.request(
        method,
        url,
        content=streamed(body) if chunked else body,
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json() == {
        "message": "Request body is too large",
        "code": "413 Request Entity Too Large",
        "title": "Request Entity Too Large",
    }
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["name"], shown["status"]) == ("img", "queued")
    assert (await client.get("/v2/images")).json()["images"] == [shown]
    assert (await client.get(f"/v2/images/{image_id}/members")).json()["members"] == []
    assert (await client.get("/v2/tasks")).json()["tasks"] == []


async def test_a_body_within_the_cap_is_read(client: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"n" * 255 + b'"' + b" " * (MAX_JSON_BODY - 270) + b"}"
    assert len(body) <= MAX_JSON_BODY
    response = await client.post(
        "/v2/images", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "n" * 255
