"""PATCH /v2/images/{id} with Glance's JSON-patch media types."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from factories import PATCH_21, create

PATCH_20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}


async def patch(
    client: httpx.AsyncClient,
    image_id: str,
    ops: Any,
    headers: dict[str, str] = PATCH_21,
) -> httpx.Response:
    return await client.patch(f"/v2/images/{image_id}", json=ops, headers=headers)


async def test_add_replace_remove(client: httpx.AsyncClient) -> None:
    image = await create(client, name="old", extra="1")
    response = await patch(
        client,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "add", "path": "/min_ram", "value": 256},
            {"op": "add", "path": "/os_distro", "value": "cirros"},
            {"op": "replace", "path": "/extra", "value": "2"},
            {"op": "add", "path": "/a~1b", "value": "slash"},
            {"op": "replace", "path": "/tags", "value": ["t1", "t2"]},
            {"op": "replace", "path": "/visibility", "value": "private"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "new"
    assert body["min_ram"] == 256
    assert body["os_distro"] == "cirros"
    assert body["extra"] == "2"
    assert body["a/b"] == "slash"
    assert body["tags"] == ["t1", "t2"]
    assert body["visibility"] == "private"
    response = await patch(client, image["id"], [{"op": "remove", "path": "/extra"}])
    assert response.status_code == 200
    assert "extra" not in response.json()
    assert (await client.get(f"/v2/images/{image['id']}")).json() == response.json()


async def test_v20_media_type(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await patch(
        client, image["id"], [{"replace": "/name", "value": "v20"}], headers=PATCH_20
    )
    assert response.status_code == 200
    assert response.json()["name"] == "v20"


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/size", "value": 1}], 403),
        ([{"op": "replace", "path": "/id", "value": "x"}], 403),
        ([{"op": "add", "path": "/deleted_at", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400),
        ([{"op": "replace", "path": "/min_disk", "value": -5}], 400),
        ([{"op": "move", "from": "/name", "path": "/x"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ([{"op": "add", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "add", "path": "/name"}], 400),
        ({"op": "add"}, 400),
    ],
)
async def test_bad_operations_change_nothing(
    client: httpx.AsyncClient,
    ops: Any,
    status: int,
) -> None:
    image = await create(client, name="keep")
    # The first operation is valid: a failing later one must still roll everything back.
    batch = (
        [{"op": "replace", "path": "/name", "value": "changed"}, *ops]
        if isinstance(ops, list)
        else ops
    )
    response = await patch(client, image["id"], batch)
    assert response.status_code == status, response.text
    assert (await client.get(f"/v2/images/{image['id']}")).json() == image


async def test_wrong_media_type_is_415(client: httpx.AsyncClient) -> None:
    image = await create(client)
    for content_type in ("application/json", "application/json-patch+json"):
        response = await patch(
            client,
            image["id"],
            [{"op": "replace", "path": "/name", "value": "x"}],
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 415
    assert (await client.get(f"/v2/images/{image['id']}")).json()["name"] is None


async def test_formats_change_only_while_queued(client: httpx.AsyncClient) -> None:
    image = await create(client)
    upload = await client.put(
        f"/v2/images/{image['id']}/file",
        content=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204
    response = await patch(
        client, image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
    )
    assert response.status_code == 403
    renamed = await patch(client, image["id"], [{"op": "replace", "path": "/name", "value": "n"}])
    assert renamed.status_code == 200


async def test_wrong_media_type_names_the_accepted_ones(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await patch(client, image["id"], [], headers={"Content-Type": "application/json"})
    assert response.status_code == 415
    assert "openstack-images-v2.1-json-patch" in response.headers["accept-patch"]
