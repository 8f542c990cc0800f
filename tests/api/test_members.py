"""Image members (API 2.1): who may share, who answers, what each side sees."""

from __future__ import annotations

from typing import Any

import httpx

from personas import ADMIN, FRIEND, OTHER, OWNER, listed, new_image, proxy_client


async def _shared(make_settings: Any, client_for: Any, **overrides: Any) -> tuple[Any, str]:
    client = await proxy_client(make_settings, client_for, **overrides)
    return client, await new_image(client, OWNER)


def _members_url(image_id: str, member: str | None = None) -> str:
    url = f"/v2/images/{image_id}/members"
    return f"{url}/{member}" if member else url


async def _add(client: httpx.AsyncClient, image_id: str, member: str) -> httpx.Response:
    return await client.post(_members_url(image_id), json={"member": member}, headers=OWNER)


async def test_owner_shares_and_member_accepts(make_settings: Any, client_for: Any) -> None:
    client, image_id = await _shared(make_settings, client_for)
    assert (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()["visibility"] == (
        "shared"
    )
    added = await _add(client, image_id, "friend")
    assert added.status_code == 200
    body = added.json()
    assert body["member_id"] == "friend"
    assert body["image_id"] == image_id
    assert body["status"] == "pending"
    assert body["schema"] == "/v2/schemas/member"
    assert body["created_at"].endswith("Z")

    # A pending member sees the image directly, but not in the default list.
    assert (await client.get(f"/v2/images/{image_id}", headers=FRIEND)).status_code == 200
    assert image_id not in await listed(client, FRIEND)
    assert image_id not in await listed(client, FRIEND, "?visibility=shared")
    assert image_id in await listed(client, FRIEND, "?member_status=pending")
    assert image_id in await listed(client, FRIEND, "?visibility=shared&member_status=all")
    assert image_id not in await listed(client, FRIEND, "?member_status=accepted")

    accepted = await client.put(
        _members_url(image_id, "friend"), json={"status": "accepted"}, headers=FRIEND
    )
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert image_id in await listed(client, FRIEND)
    assert image_id in await listed(client, FRIEND, "?visibility=shared")
    assert image_id not in await listed(client, FRIEND, "?member_status=pending")

    rejected = await client.put(
        _members_url(image_id, "friend"), json={"status": "rejected"}, headers=FRIEND
    )
    assert rejected.json()["status"] == "rejected"
    assert image_id not in await listed(client, FRIEND)
    assert image_id in await listed(client, FRIEND, "?member_status=rejected")
    # Still readable whatever the answer.
    assert (await client.get(f"/v2/images/{image_id}", headers=FRIEND)).status_code == 200
    # Other projects never see it.
    assert (await client.get(f"/v2/images/{image_id}", headers=OTHER)).status_code == 404
    assert image_id not in await listed(client, OTHER, "?member_status=all")


async def test_member_lists_show_each_side_its_rows(make_settings: Any, client_for: Any) -> None:
    client, image_id = await _shared(make_settings, client_for)
    for member in ("friend", "other"):
        assert (await _add(client, image_id, member)).status_code == 200
    owner_view = await client.get(_members_url(image_id), headers=OWNER)
    assert owner_view.status_code == 200
    assert owner_view.json()["schema"] == "/v2/schemas/members"
    assert [m["member_id"] for m in owner_view.json()["members"]] == ["friend", "other"]
    friend_view = await client.get(_members_url(image_id), headers=FRIEND)
    assert [m["member_id"] for m in friend_view.json()["members"]] == ["friend"]
    admin_view = await client.get(_members_url(image_id), headers=ADMIN)
    assert len(admin_view.json()["members"]) == 2

    shown = await client.get(_members_url(image_id, "other"), headers=OWNER)
    assert shown.status_code == 200
    assert shown.json()["status"] == "pending"
    # A member cannot look at another member's row.
    assert (await client.get(_members_url(image_id, "other"), headers=FRIEND)).status_code == 404
    assert (await client.get(_members_url(image_id, "nobody"), headers=OWNER)).status_code == 404


async def test_only_the_member_answers_and_only_the_owner_removes(
    make_settings: Any, client_for: Any
) -> None:
    client, image_id = await _shared(make_settings, client_for)
    await _add(client, image_id, "friend")
    await _add(client, image_id, "other")
    url = _members_url(image_id, "friend")
    # The owner cannot answer for the member.
    owner_answer = await client.put(url, json={"status": "accepted"}, headers=OWNER)
    assert owner_answer.status_code == 403
    # Nor can another member for it (it cannot see that row).
    other_answer = await client.put(url, json={"status": "accepted"}, headers=OTHER)
    assert other_answer.status_code == 404
    # A bad status is refused.
    bad = await client.put(url, json={"status": "maybe"}, headers=FRIEND)
    assert bad.status_code == 400
    assert (await client.put(url, json={}, headers=FRIEND)).status_code == 400
    # Members cannot add or remove members.
    adding = await client.post(_members_url(image_id), json={"member": "x"}, headers=FRIEND)
    assert adding.status_code == 403
    assert (await client.delete(url, headers=FRIEND)).status_code == 403
    # The owner removes; the row is gone and so is the access.
    assert (await client.delete(url, headers=OWNER)).status_code == 204
    assert (await client.get(url, headers=OWNER)).status_code == 404
    assert (await client.delete(url, headers=OWNER)).status_code == 404
    assert (await client.get(f"/v2/images/{image_id}", headers=FRIEND)).status_code == 404
    # Added again: a fresh pending membership.
    again = await _add(client, image_id, "friend")
    assert again.status_code == 200
    assert again.json()["status"] == "pending"
    # Admins may answer for anyone and remove anyone.
    admin_answer = await client.put(url, json={"status": "accepted"}, headers=ADMIN)
    assert admin_answer.status_code == 200
    assert (await client.delete(_members_url(image_id, "other"), headers=ADMIN)).status_code == 204


async def test_members_need_a_shared_image(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    image_id = await new_image(client, OWNER, visibility="private")
    assert (await _add(client, image_id, "friend")).status_code == 403
    assert (await client.get(_members_url(image_id), headers=OWNER)).status_code == 403
    assert (await client.get(_members_url(image_id, "friend"), headers=OWNER)).status_code == 404
    # Members stay when the image stops being shared, but there is nothing to manage then.
    shared_id = await new_image(client, OWNER)
    await _add(client, shared_id, "friend")
    patch = await client.patch(
        f"/v2/images/{shared_id}",
        json=[{"op": "replace", "path": "/visibility", "value": "private"}],
        headers={**OWNER, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert patch.status_code == 200
    assert (await client.get(f"/v2/images/{shared_id}", headers=FRIEND)).status_code == 404
    answer = await client.put(
        _members_url(shared_id, "friend"), json={"status": "accepted"}, headers=OWNER
    )
    assert answer.status_code == 403


async def test_duplicates_quota_and_bad_bodies(make_settings: Any, client_for: Any) -> None:
    client, image_id = await _shared(make_settings, client_for, image_member_quota=2)
    assert (await _add(client, image_id, "friend")).status_code == 200
    duplicate = await _add(client, image_id, "friend")
    assert duplicate.status_code == 409
    assert "duplicated" in duplicate.json()["message"]
    assert (await _add(client, image_id, "other")).status_code == 200
    over = await _add(client, image_id, "third")
    assert over.status_code == 413
    assert "Maximum: 2" in over.json()["message"]
    # Removing one frees a slot.
    assert (await client.delete(_members_url(image_id, "other"), headers=OWNER)).status_code == 204
    assert (await _add(client, image_id, "third")).status_code == 200
    for body in ({}, {"member": ""}, {"member": 7}):
        response = await client.post(_members_url(image_id), json=body, headers=OWNER)
        assert response.status_code == 400, body
    missing = await client.post(
        "/v2/images/00000000-0000-0000-0000-000000000000/members",
        json={"member": "x"},
        headers=OWNER,
    )
    assert missing.status_code == 404


async def test_unlimited_member_quota(make_settings: Any, client_for: Any) -> None:
    client, image_id = await _shared(make_settings, client_for, image_member_quota=-1)
    for index in range(3):
        assert (await _add(client, image_id, f"p{index}")).status_code == 200


async def test_deleted_image_loses_its_members(make_settings: Any, client_for: Any) -> None:
    client, image_id = await _shared(make_settings, client_for)
    await _add(client, image_id, "friend")
    assert (await client.delete(f"/v2/images/{image_id}", headers=OWNER)).status_code == 204
    assert (await client.get(_members_url(image_id), headers=OWNER)).status_code == 404


async def test_member_schemas(client: httpx.AsyncClient) -> None:
    member = (await client.get("/v2/schemas/member")).json()
    assert member["name"] == "member"
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = (await client.get("/v2/schemas/members")).json()
    assert members["name"] == "members"
    assert members["properties"]["members"]["items"] == member
