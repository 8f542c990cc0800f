"""Visibility (API 2.5): public, community, shared, private; who may set which; listing."""

from __future__ import annotations

from typing import Any

import httpx

from personas import ADMIN, FRIEND, OTHER, OWNER, listed, new_image, proxy_client

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


async def _patch(
    client: httpx.AsyncClient, image_id: str, headers: dict[str, str], path: str, value: Any
) -> httpx.Response:
    return await client.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": path, "value": value}],
        headers={**headers, **PATCH},
    )


async def test_who_may_set_which_visibility(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    refused = await client.post("/v2/images", json={"visibility": "public"}, headers=OWNER)
    assert refused.status_code == 403
    community = await new_image(client, OWNER, visibility="community")
    public = await new_image(client, ADMIN, visibility="public")
    image_id = await new_image(client, OWNER)
    assert (await _patch(client, image_id, OWNER, "/visibility", "public")).status_code == 403
    assert (await _patch(client, image_id, OWNER, "/visibility", "community")).status_code == 200
    assert (await _patch(client, image_id, ADMIN, "/visibility", "public")).status_code == 200
    # Only the owner project (or an admin) changes an image, whatever its visibility.
    assert (await _patch(client, community, OTHER, "/name", "x")).status_code == 403
    assert (await _patch(client, public, OWNER, "/name", "x")).status_code == 403
    assert (await client.delete(f"/v2/images/{public}", headers=OWNER)).status_code == 403


async def test_owner_is_set_by_admins_only(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    refused = await client.post("/v2/images", json={"owner": "other"}, headers=OWNER)
    assert refused.status_code == 403
    assert "owned by 'other'" in refused.json()["message"]
    created = await client.post("/v2/images", json={"owner": "other"}, headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["owner"] == "other"
    image_id = await new_image(client, OWNER)
    changed = await _patch(client, image_id, OWNER, "/owner", "other")
    assert changed.status_code == 403
    assert (await _patch(client, image_id, ADMIN, "/owner", "other")).status_code == 200
    # The image now belongs to the other project.
    assert (await client.get(f"/v2/images/{image_id}", headers=OWNER)).status_code == 404
    assert (await client.get(f"/v2/images/{image_id}", headers=OTHER)).status_code == 200


async def test_lists_per_visibility(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    private = await new_image(client, OWNER, visibility="private")
    shared = await new_image(client, OWNER)
    community = await new_image(client, OWNER, visibility="community")
    public = await new_image(client, ADMIN, visibility="public")
    hidden = await new_image(client, ADMIN, visibility="public", os_hidden=True)
    others = await new_image(client, OTHER, visibility="private")
    others_community = await new_image(client, OTHER, visibility="community")

    assert await listed(client, OWNER) == {private, shared, community, public}
    # Community images of other projects only when asked for.
    assert await listed(client, FRIEND) == {public}
    assert await listed(client, FRIEND, "?visibility=community") == {community, others_community}
    assert await listed(client, OWNER, "?visibility=private") == {private}
    assert await listed(client, OWNER, "?visibility=shared") == {shared}
    assert await listed(client, OWNER, "?visibility=public") == {public}
    assert await listed(client, OWNER, "?os_hidden=true") == {hidden}
    # `all`: everything the caller may see, community included.
    assert await listed(client, FRIEND, "?visibility=all") == {
        community,
        others_community,
        public,
    }
    # Admins see every project's images with `all`, and all private ones with `private`.
    everything = {private, shared, community, public, others, others_community}
    assert await listed(client, ADMIN, "?visibility=all") == everything
    assert await listed(client, ADMIN, "?visibility=private") == {private, others}
    # The admin's default list still leaves other projects' community images out.
    assert await listed(client, ADMIN) == {private, shared, public, others}
    # Community images are readable by anyone who knows the id.
    shown = await client.get(f"/v2/images/{others_community}", headers=FRIEND)
    assert shown.status_code == 200
    bad = await client.get("/v2/images?member_status=maybe", headers=OWNER)
    assert bad.status_code == 400
