"""Deactivate and reactivate (API 2.3)."""

from __future__ import annotations

from typing import Any

import httpx

from personas import ADMIN, FRIEND, OTHER, OWNER, new_image, proxy_client

DATA = b"deactivation test data"


async def _active_image(client: httpx.AsyncClient, **body: Any) -> str:
    image_id = await new_image(client, OWNER, disk_format="raw", container_format="bare", **body)
    upload = await client.put(
        f"/v2/images/{image_id}/file",
        content=DATA,
        headers={**OWNER, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204
    return image_id


async def _status(client: httpx.AsyncClient, image_id: str) -> str:
    status: str = (await client.get(f"/v2/images/{image_id}", headers=ADMIN)).json()["status"]
    return status


async def test_deactivate_blocks_downloads_for_non_admins(
    make_settings: Any, client_for: Any
) -> None:
    client = await proxy_client(make_settings, client_for)
    image_id = await _active_image(client)
    actions = f"/v2/images/{image_id}/actions"
    deactivated = await client.post(f"{actions}/deactivate", headers=OWNER)
    assert deactivated.status_code == 204
    assert deactivated.content == b""
    assert await _status(client, image_id) == "deactivated"
    # Idempotent, as in Glance.
    assert (await client.post(f"{actions}/deactivate", headers=OWNER)).status_code == 204
    refused = await client.get(f"/v2/images/{image_id}/file", headers=OWNER)
    assert refused.status_code == 403
    assert "deactivated" in refused.json()["message"]
    admin_read = await client.get(f"/v2/images/{image_id}/file", headers=ADMIN)
    assert admin_read.status_code == 200
    assert admin_read.content == DATA
    # The record itself stays readable.
    assert (await client.get(f"/v2/images/{image_id}", headers=OWNER)).status_code == 200

    assert (await client.post(f"{actions}/reactivate", headers=OWNER)).status_code == 204
    assert await _status(client, image_id) == "active"
    assert (await client.post(f"{actions}/reactivate", headers=OWNER)).status_code == 204
    downloaded = await client.get(f"/v2/images/{image_id}/file", headers=OWNER)
    assert downloaded.status_code == 200
    assert downloaded.content == DATA


async def test_only_active_images_deactivate(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    queued = await new_image(client, OWNER)
    for action in ("deactivate", "reactivate"):
        response = await client.post(f"/v2/images/{queued}/actions/{action}", headers=OWNER)
        assert response.status_code == 403, action
        assert "status 'queued'" in response.json()["message"]
    assert await _status(client, queued) == "queued"
    missing = "/v2/images/00000000-0000-0000-0000-000000000000/actions/deactivate"
    assert (await client.post(missing, headers=OWNER)).status_code == 404
    assert (await client.get(f"/v2/images/{queued}/actions/deactivate")).status_code == 405


async def test_who_may_deactivate(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    public = await _active_image(client)
    patch = await client.patch(
        f"/v2/images/{public}",
        json=[{"op": "replace", "path": "/visibility", "value": "public"}],
        headers={**ADMIN, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert patch.status_code == 200
    private = await _active_image(client, visibility="private")
    # Another project sees the public image but may not deactivate it; the private one is
    # not there for it at all.
    assert (
        await client.post(f"/v2/images/{public}/actions/deactivate", headers=OTHER)
    ).status_code == 403
    assert (
        await client.post(f"/v2/images/{private}/actions/deactivate", headers=FRIEND)
    ).status_code == 404
    assert (
        await client.post(f"/v2/images/{private}/actions/deactivate", headers=ADMIN)
    ).status_code == 204
    assert await _status(client, private) == "deactivated"
