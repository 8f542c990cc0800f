"""Version discovery, /v2.N prefixes and the JSON schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from factories import create


async def test_versions(client: httpx.AsyncClient) -> None:
    root = await client.get("/")
    versions = await client.get("/versions")
    assert root.status_code == 300
    assert versions.status_code == 200
    assert root.json() == versions.json()
    entries = versions.json()["versions"]
    ids = [entry["id"] for entry in entries]
    assert ids == [f"v2.{minor}" for minor in (17, 15, 9, 7, 6, 5, 4, 3, 2, 1, 0)]
    assert "v2.12" not in ids  # multi-store only
    current = [entry["id"] for entry in entries if entry["status"] == "CURRENT"]
    assert current == ["v2.17"]
    assert {entry["status"] for entry in entries} == {"CURRENT", "SUPPORTED"}
    for entry in entries:
        assert entry["links"] == [{"rel": "self", "href": "http://glimpse.test/v2/"}]


async def test_what_the_versions_promise_is_served(client: httpx.AsyncClient) -> None:
    """Every listed version includes the metadata definitions catalog: its routes and schemas
    answer under each version prefix a client may use."""
    ids = [entry["id"] for entry in (await client.get("/versions")).json()["versions"]]
    assert {"v2.14", "v2.16", "v2.18"}.isdisjoint(ids)  # Glance's cache API: not here
    for version in ids:
        prefix = "/" + version
        namespaces = await client.get(f"{prefix}/metadefs/namespaces")
        assert namespaces.status_code == 200, version
        assert namespaces.json()["schema"] == "/v2/schemas/metadefs/namespaces"
        assert (await client.get(f"{prefix}/metadefs/resource_types")).status_code == 200
        assert (await client.get(f"{prefix}/schemas/metadefs/namespace")).status_code == 200


async def test_multistore_versions_are_listed_with_enabled_backends(
    make_settings: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    settings = make_settings(enabled_backends="a:file")
    client = await client_for(settings)
    ids = [entry["id"] for entry in (await client.get("/versions")).json()["versions"]]
    # 2.11 (the import lock) and 2.12 (an image's tasks) too, as Glance lists them.
    assert ids[:7] == ["v2.17", "v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9"]
    assert "v2.8" in ids


async def test_public_endpoint_overrides_links(
    make_settings: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(make_settings(public_endpoint="https://images.example.com"))
    body = (await client.get("/versions")).json()
    assert body["versions"][0]["links"][0]["href"] == "https://images.example.com/v2/"


@pytest.mark.parametrize("prefix", ["/v2", "/v2.0", "/v2.9", "/v2.5"])
async def test_minor_version_prefixes_reach_the_same_routes(
    client: httpx.AsyncClient, prefix: str
) -> None:
    image = await create(client, name="prefixed")
    response = await client.get(f"{prefix}/images/{image['id']}")
    assert response.status_code == 200
    assert response.json()["name"] == "prefixed"


async def test_image_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/v2/schemas/image")).json()
    assert schema["name"] == "image"
    properties = schema["properties"]
    for name in ("os_hash_algo", "os_hash_value", "os_hidden", "stores"):
        assert name in properties
    assert properties["cinder_encryption_key_deletion_policy"]["enum"] == [
        "on_image_deletion",
        "do_not_delete",
    ]
    assert properties["cinder_encryption_key_id"]["type"] == "string"
    assert "compressed" in properties["container_format"]["enum"]
    assert properties["status"]["readOnly"] is True
    assert schema["additionalProperties"] == {"type": "string"}
    assert {link["rel"] for link in schema["links"]} == {"self", "enclosure", "describedby"}
    collection = (await client.get("/v2/schemas/images")).json()
    assert collection["name"] == "images"
    assert collection["properties"]["images"]["items"] == schema
