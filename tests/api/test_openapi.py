"""GET /openapi.json: served without identity, and describing every route from the code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from factories import MULTISTORE, app_routes
from glimpse.config import load_settings
from glimpse.domain import metadef_schemas
from glimpse.domain.patch import PATCH_MEDIA_TYPES
from glimpse_api.app import create_app
from glimpse_api.openapi.document import build_document
from glimpse_api.schemas.json_schemas import image_schema
from personas import ANONYMOUS, proxy_client

# Unauthenticated (/metrics answers only peers in [metrics] allowed_networks).
PUBLIC = {"/", "/versions", "/healthcheck", "/healthcheck/ready", "/metrics"}
# oslo.middleware's answers (its reason, negotiated), not Glance's error format.
NOT_GLANCE_ERRORS = {"/healthcheck", "/healthcheck/ready"}
KEYSTONE = {
    "auth_url": "http://keystone.invalid/v3",
    "username": "g",
    "password": "p",
    "project_name": "s",
}


def _document(**settings: Any) -> dict[str, Any]:
    loaded = load_settings(None, **MULTISTORE, **settings)
    return build_document(create_app(loaded), loaded)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_the_document_is_served_to_anyone(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for, **MULTISTORE)
    response = await client.get("/openapi.json", headers=ANONYMOUS)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document == _document(auth_strategy="trusted-proxy")
    # A valid OpenAPI 3.1 document, as schemathesis (which validates it on load) reads it.
    schemathesis.openapi.from_dict(document).validate()


def test_every_route_is_described_and_every_reference_resolves() -> None:
    document = _document(auth_strategy="trusted-proxy")
    documented = {(method, path) for method, path, _ in _operations(document)}
    routes = app_routes(create_app(load_settings(None, **MULTISTORE)))
    assert documented == routes - {("GET", "/openapi.json")}
    components = document["components"]
    for reference in _refs(document):
        section, _, name = reference.removeprefix("#/components/").partition("/")
        assert name in components[section], reference
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        assert any(status.startswith("2") or status == "300" for status in statuses), path
        # FastAPI's 422 is never answered: validation errors are Glance's 400.
        assert "422" not in statuses, (method, path)
        if path in NOT_GLANCE_ERRORS:
            continue
        for status in statuses - {"200", "201", "202", "204", "206", "300"}:
            content = operation["responses"][status]["content"]
            assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert set(content) == {"application/json", "text/html", "text/plain"}


def test_bodies_come_from_the_served_schemas() -> None:
    document = _document()
    paths, schemas = document["paths"], document["components"]["schemas"]
    create = paths["/v2/images"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/Image"}
    assert schemas["Image"] == {"type": "object", **image_schema()}
    patch = paths["/v2/images/{image_id}"]["patch"]["requestBody"]["content"]
    assert set(patch) == set(PATCH_MEDIA_TYPES)
    for path in ("/v2/images/{image_id}/file", "/v2/images/{image_id}/stage"):
        upload = paths[path]["put"]["requestBody"]["content"]
        assert upload == {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
        }
    listing = {p["name"]: p["schema"] for p in paths["/v2/images"]["get"]["parameters"]}
    assert listing["limit"] == {"type": "integer", "minimum": 0}
    assert listing["min_ram"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    assert listing["tag"]["type"] == "array"
    download = paths["/v2/images/{image_id}/file"]["get"]["responses"]
    assert {"200", "204", "206", "416"} <= set(download)
    assert "application/octet-stream" in download["206"]["content"]
    imported = paths["/v2/images/{image_id}/import"]["post"]["responses"]["202"]
    assert "content" not in imported  # 202 has no body


def test_metadef_bodies_come_from_the_served_metadef_schemas() -> None:
    document = _document()
    paths, schemas = document["paths"], document["components"]["schemas"]
    namespaces = "/v2/metadefs/namespaces"
    create = paths[namespaces]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewMetadefNamespace"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MetadefNamespace"
    }
    assert {"400", "403", "404", "409", "413"} <= set(create["responses"])
    served = metadef_schemas.namespace_schema()
    assert (
        schemas["MetadefNamespace"]["properties"]["namespace"]
        == (served["properties"]["namespace"])
    )
    # The served schema's own references are resolved where they stand.
    assert "definitions" not in schemas["MetadefNamespace"]
    assert "#/definitions/" not in json.dumps(schemas)
    assert schemas["MetadefObject"]["properties"]["required"] == {
        "type": "array",
        "items": {"type": "string"},
        "uniqueItems": True,
    }
    # What the API renders is no part of what it takes.
    assert set(schemas["NewMetadefNamespace"]["properties"]) == set(served["properties"]) - {
        "self",
        "schema",
        "created_at",
        "updated_at",
    }
    assert schemas["NewMetadefNamespace"]["additionalProperties"] is False
    tag = paths[namespaces + "/{namespace}/tags/{tag_name}"]
    assert set(tag["put"]["responses"]) >= {"200", "400", "403", "404", "409", "413"}
    health = paths["/healthcheck"]
    assert set(health["head"]["responses"]) == {"204", "503"}
    assert set(health["get"]["responses"]["503"]["content"]) == {
        "text/plain",
        "text/html",
        "application/json",
    }


@pytest.mark.parametrize(
    ("settings", "required", "optional"),
    [
        ({}, set(), set()),
        (
            {"auth_strategy": "trusted-proxy"},
            {"X-Identity-Status"},
            {"X-User-Id", "X-Project-Id", "X-Tenant-Id", "X-Roles"},
        ),
        (
            {"auth_strategy": "keystone", "keystone_authtoken": KEYSTONE},
            {"X-Auth-Token"},
            {"X-Service-Token"},
        ),
    ],
)
def test_identity_headers_follow_auth_strategy(
    settings: dict[str, Any], required: set[str], optional: set[str]
) -> None:
    document = _document(**settings)
    components = document["components"]
    schemes = components.get("securitySchemes", {})
    assert {scheme["name"] for scheme in schemes.values()} == required
    assert set(components.get("parameters", {})) == optional
    for _, path, operation in _operations(document):
        if path in PUBLIC or path.startswith("/v2/schemas/"):
            assert operation["security"] == []
            assert "401" not in operation["responses"]
        else:
            assert operation["security"] == ([{name: [] for name in schemes}] if schemes else [])
            assert {"401", "503"} <= set(operation["responses"])
            if "X-Project-Id" in optional:  # a proxy's id too long to store is refused
                assert "400" in operation["responses"]
    for name in optional & {"X-User-Id", "X-Project-Id", "X-Tenant-Id"}:
        assert components["parameters"][name]["schema"] == {"type": "string", "maxLength": 255}
