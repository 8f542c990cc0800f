"""Image records over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from factories import PATCH_21, create


async def test_create_returns_the_full_record(client: httpx.AsyncClient) -> None:
    image_id = str(uuid.uuid4())
    response = await client.post(
        "/v2/images",
        json={
            "id": image_id,
            "name": "cirros",
            "disk_format": "qcow2",
            "container_format": "bare",
            "min_ram": 512,
            "min_disk": 1,
            "tags": ["a", "b", "a"],
            "hw_disk_bus": "scsi",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"http://glimpse.test/v2/images/{image_id}"
    methods = "glance-direct,web-download,copy-image"
    assert response.headers["OpenStack-image-import-methods"] == methods
    assert "OpenStack-image-store-ids" not in response.headers  # single store
    assert body["id"] == image_id
    assert body["status"] == "queued"
    assert body["visibility"] == "shared"
    assert body["owner"] == "glimpse"
    assert body["tags"] == ["a", "b"]
    assert body["hw_disk_bus"] == "scsi"
    assert body["size"] is None
    assert body["checksum"] is None
    assert body["protected"] is False
    assert body["os_hidden"] is False
    assert (body["min_ram"], body["min_disk"]) == (512, 1)
    assert body["self"] == f"/v2/images/{image_id}"
    assert body["file"] == f"/v2/images/{image_id}/file"
    assert body["schema"] == "/v2/schemas/image"
    assert body["created_at"].endswith("Z")
    shown = await client.get(f"/v2/images/{image_id}")
    assert shown.status_code == 200
    assert shown.json() == body


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"disk_format": "floppy"}, 400, "disk_format"),
        ({"container_format": "zip"}, 400, "container_format"),
        ({"visibility": "everyone"}, 400, "visibility"),
        ({"min_ram": -1}, 400, "min_ram"),
        ({"min_disk": "big"}, 400, "min_disk"),
        ({"protected": "yes"}, 400, "protected"),
        ({"name": "x" * 256}, 400, "name"),
        ({"id": "not-a-uuid"}, 400, "UUID"),
        ({"tags": "single"}, 400, "tags"),
        ({"status": "active"}, 403, "read-only"),
        ({"checksum": "0" * 32}, 403, "read-only"),
        ({"deleted": True}, 403, "reserved"),
        ({"os_glance_import_task": "x"}, 403, "reserved"),
        ({"custom": 5}, 400, "custom"),
        ({"cinder_encryption_key_deletion_policy": "sometimes"}, 400, "deletion_policy"),
    ],
)
async def test_create_rejects_bad_attributes(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = await client.post("/v2/images", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["code"].startswith(str(status))
    assert fragment in error["message"]
    listed = await client.get("/v2/images")
    assert listed.json()["images"] == []


async def test_create_accepts_compressed_container_and_every_disk_format(
    client: httpx.AsyncClient,
) -> None:
    formats = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
    for disk_format in formats:
        body = await create(client, disk_format=disk_format, container_format="compressed")
        assert (body["disk_format"], body["container_format"]) == (disk_format, "compressed")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/images", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["message"] == "Malformed JSON in request body."
    response = await client.post("/v2/images", json=["a list"])
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "nul \\u0000 inside"}',
        b'{"os_distro": "\\u0000"}',
        b'{"tags": ["\\u0000"]}',
        b'{"key\\u0000": "value"}',
        b'{"name": "lone \\ud800 surrogate"}',
        b'{"tags": ["\\udfff"]}',
    ],
)
async def test_strings_no_database_stores_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    # PostgreSQL refuses NUL in text and no encoder takes a lone surrogate: both were 500s.
    response = await client.post(
        "/v2/images", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "Strings in the request body must be UTF-8 text without NUL."
    )
    assert (await client.get("/v2/images")).json()["images"] == []


async def test_deeply_nested_json_is_400(client: httpx.AsyncClient) -> None:
    image = await create(client)
    for depth in (33, 100_000):  # past 32 levels; past the decoder's recursion limit (a 500)
        nested = b"[" * depth + b"]" * depth
        for method, url, content_type in (
            ("POST", "/v2/images", "application/json"),
            ("PATCH", f"/v2/images/{image['id']}", PATCH_21["Content-Type"]),
        ):
            response = await client.request(
                method, url, content=nested, headers={"Content-Type": content_type}
            )
            assert response.status_code == 400, response.text
            assert (
                response.json()["message"] == "JSON in the request body may nest at most 32 levels."
            )
    shallow = [{"op": "add", "path": "/tags", "value": ["a"]}]
    response = await client.patch(f"/v2/images/{image['id']}", json=shallow, headers=PATCH_21)
    assert response.status_code == 200
    assert response.json()["tags"] == ["a"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/images/%00"),
        ("DELETE", "/v2/images/a%00b"),
        ("GET", "/v2/images/{id}/members/%00"),
        ("PUT", "/v2/images/{id}/tags/t%00"),
        ("GET", "/v2/tasks/%00"),
    ],
)
async def test_a_nul_in_the_path_names_nothing(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    # PostgreSQL refuses NUL in the text it compares: each was a 500.
    image = await create(client)
    response = await client.request(method, path.format(id=image["id"]))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "404 Not Found"
    assert (await client.get(f"/v2/images/{image['id']}")).json()["tags"] == []


async def test_duplicate_id_is_409(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await client.post("/v2/images", json={"id": image["id"]})
    assert response.status_code == 409
    assert image["id"] in response.json()["message"]


async def test_quotas_give_413(make_settings: Any, client_for: Any) -> None:
    client = await client_for(make_settings(image_property_quota=2, image_tag_quota=1))
    response = await client.post("/v2/images", json={"a": "1", "b": "2", "c": "3"})
    assert response.status_code == 413
    assert "Maximum: 2" in response.json()["message"]
    response = await client.post("/v2/images", json={"tags": ["x", "y"]})
    assert response.status_code == 413
    image = await create(client, tags=["x"])
    response = await client.put(f"/v2/images/{image['id']}/tags/y")
    assert response.status_code == 413
    response = await client.patch(
        f"/v2/images/{image['id']}",
        headers=PATCH_21,
        json=[
            {"op": "add", "path": "/p1", "value": "1"},
            {"op": "add", "path": "/p2", "value": "2"},
        ],
    )
    assert response.status_code == 200
    response = await client.patch(
        f"/v2/images/{image['id']}",
        headers=PATCH_21,
        json=[{"op": "add", "path": "/p3", "value": "3"}],
    )
    assert response.status_code == 413
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert "p3" not in shown


async def test_unknown_image_is_404(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await client.get(f"/v2/images/{missing}")
    assert response.status_code == 404
    assert response.json()["message"] == f"No image found with ID {missing}"
    response = await client.delete(f"/v2/images/{missing}")
    assert response.status_code == 404
    assert response.json()["message"] == f"Failed to find image {missing} to delete"
    response = await client.patch(f"/v2/images/{missing}", headers=PATCH_21, json=[])
    assert response.status_code == 404


async def test_delete(client: httpx.AsyncClient) -> None:
    image = await create(client)
    assert (await client.delete(f"/v2/images/{image['id']}")).status_code == 204
    assert (await client.get(f"/v2/images/{image['id']}")).status_code == 404
    assert (await client.delete(f"/v2/images/{image['id']}")).status_code == 404
    # A deleted image's id is never reused.
    assert (await client.post("/v2/images", json={"id": image["id"]})).status_code == 409


async def test_protected_image_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    image = await create(client, protected=True)
    response = await client.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 403
    assert "protected" in response.json()["message"]
    assert (await client.get(f"/v2/images/{image['id']}")).status_code == 200


async def test_tags(client: httpx.AsyncClient) -> None:
    image = await create(client)
    url = f"/v2/images/{image['id']}/tags"
    assert (await client.put(f"{url}/blue")).status_code == 204
    assert (await client.put(f"{url}/blue")).status_code == 204
    assert (await client.put(f"{url}/green")).status_code == 204
    assert (await client.get(f"/v2/images/{image['id']}")).json()["tags"] == ["blue", "green"]
    assert (await client.delete(f"{url}/blue")).status_code == 204
    assert (await client.delete(f"{url}/blue")).status_code == 404
    assert (await client.get(f"/v2/images/{image['id']}")).json()["tags"] == ["green"]
    assert (await client.put(f"/v2/images/{uuid.uuid4()}/tags/x")).status_code == 404


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    ok = await client.get("/versions")
    missing = await client.get(f"/v2/images/{uuid.uuid4()}")
    ids = {ok.headers["x-openstack-request-id"], missing.headers["x-openstack-request-id"]}
    assert len(ids) == 2
    assert all(value.startswith("req-") for value in ids)
    adopted = await client.get("/versions", headers={"X-OpenStack-Request-ID": "abc123"})
    assert adopted.headers["x-openstack-request-id"] == "req-abc123"
    too_long = await client.get("/versions", headers={"X-OpenStack-Request-ID": "x" * 100})
    assert too_long.headers["x-openstack-request-id"] != "req-" + "x" * 100


async def test_unsupported_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/v2/images")
    assert response.status_code == 405
    assert response.json()["code"] == "405 Method Not Allowed"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v2/images", "GET, POST"),
        ("/v2/images/x", "DELETE, GET, PATCH"),
        ("/v2/images/x/members/y", "DELETE, GET, PUT"),
        ("/v2/images/x/tags/t", "DELETE, PUT"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, path: str, allowed: str
) -> None:
    # As Glance's Allow: every method of the resource, not only those of the first route
    # whose path matched (which named POST alone for /v2/images).
    response = await client.request("TRACE", path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v2/images/", "/v2.1/images/"])
async def test_an_empty_image_id_is_not_found(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """`/v2/images/` is an image whose id is empty, as in Glance: 404, not a redirect to the list
    (GET would then answer the list, DELETE a 405)."""
    image = await create(client, name="kept")
    response = await client.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "404 Not Found"
    assert "location" not in response.headers
    listed = await client.get("/v2/images")
    assert [entry["id"] for entry in listed.json()["images"]] == [image["id"]]
