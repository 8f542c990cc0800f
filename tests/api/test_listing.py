"""GET /v2/images: filters, sorting and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from factories import OCTET, create
from personas import ADMIN, FRIEND, OWNER, new_image, proxy_client


async def names(client: httpx.AsyncClient, params: Any = None) -> list[str]:
    response = await client.get("/v2/images", params=params)
    assert response.status_code == 200, response.text
    return [image["name"] for image in response.json()["images"]]


async def test_default_sort_is_newest_first(client: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        await create(client, name=name)
    listed = await names(client)
    # Same-second creations tie on created_at; id breaks the tie, so compare as a set and
    # check the explicit ascending/descending name sorts for order.
    assert sorted(listed) == ["a", "b", "c"]
    assert await names(client, {"sort": "name:asc"}) == ["a", "b", "c"]
    assert await names(client, {"sort_key": "name", "sort_dir": "desc"}) == ["c", "b", "a"]
    assert await names(client, [("sort_key", "name"), ("sort_dir", "asc")]) == ["a", "b", "c"]


async def test_paging_with_marker_and_next_links(client: httpx.AsyncClient) -> None:
    for index in range(7):
        await create(client, name=f"img{index}")
    seen: list[str] = []
    url: str | None = "/v2/images?limit=3&sort=name:asc"
    pages = 0
    while url:
        response = await client.get(url)
        body = response.json()
        assert body["first"] == "/v2/images"
        assert body["schema"] == "/v2/schemas/images"
        seen.extend(image["name"] for image in body["images"])
        url = body.get("next")
        pages += 1
    assert seen == [f"img{index}" for index in range(7)]
    assert pages == 3


async def test_api_limit_max_caps_the_page(make_settings: Any, client_for: Any) -> None:
    client = await client_for(make_settings(api_limit_max=2, limit_param_default=1))
    for index in range(3):
        await create(client, name=f"n{index}")
    assert len(await names(client)) == 1
    assert len(await names(client, {"limit": 50})) == 2


async def test_filters(client: httpx.AsyncClient) -> None:
    a = await create(client, name="alpha", disk_format="qcow2", tags=["x", "y"], os_distro="ubuntu")
    await create(client, name="beta", disk_format="raw", tags=["x"], protected=True)
    await create(client, name="gamma", disk_format="raw", os_hidden=True)
    assert await names(client, {"name": "alpha"}) == ["alpha"]
    assert sorted(await names(client, {"name": 'in:alpha,"beta"'})) == ["alpha", "beta"]
    assert await names(client, {"disk_format": "qcow2"}) == ["alpha"]
    assert sorted(await names(client, {"tag": "x"})) == ["alpha", "beta"]
    assert await names(client, [("tag", "x"), ("tag", "y")]) == ["alpha"]
    assert await names(client, {"os_distro": "ubuntu"}) == ["alpha"]
    assert await names(client, {"protected": "true"}) == ["beta"]
    assert await names(client, {"protected": "false"}) == ["alpha"]
    assert await names(client, {"os_hidden": "true"}) == ["gamma"]
    assert await names(client, {"os_hidden": "True"}) == ["gamma"]
    assert await names(client, {"id": a["id"]}) == ["alpha"]
    assert await names(client, {"status": "active"}) == []
    assert sorted(await names(client, {"visibility": "shared"})) == ["alpha", "beta"]
    assert await names(client, {"created_at": f"lte:{a['created_at']}", "name": "alpha"}) == [
        "alpha"
    ]
    assert await names(client, {"created_at": "gt:2999-01-01T00:00:00Z"}) == []
    assert await names(client, {"updated_at": "neq:2000-01-01T00:00:00Z", "name": "beta"}) == [
        "beta"
    ]


async def test_tag_filters_are_bounded(client: httpx.AsyncClient) -> None:
    tags = [f"t{number}" for number in range(20)]
    await create(client, name="tagged", tags=tags)
    await create(client, name="fewer", tags=tags[:19])
    repeated = [("tag", tag) for tag in tags * 50]  # the same twenty, many times: one filter each
    assert await names(client, repeated) == ["tagged"]
    # One more different tag is refused before any query, on SQLite as on PostgreSQL.
    response = await client.get("/v2/images", params=[*repeated, ("tag", "t20")])
    assert response.status_code == 400
    assert response.json() == {
        "message": "At most 20 different tag filters are allowed.",
        "code": "400 Bad Request",
        "title": "Bad Request",
    }


async def test_size_and_hash_filters(client: httpx.AsyncClient) -> None:
    small = await create(client, name="small")
    big = await create(client, name="big")
    for image, size in ((small, 10), (big, 1000)):
        response = await client.put(
            f"/v2/images/{image['id']}/file",
            content=b"z" * size,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 204
    assert await names(client, {"size_min": 11}) == ["big"]
    assert await names(client, {"size_max": 10}) == ["small"]
    shown = (await client.get(f"/v2/images/{big['id']}")).json()
    assert await names(client, {"checksum": shown["checksum"]}) == ["big"]
    assert await names(client, {"os_hash_value": shown["os_hash_value"]}) == ["big"]
    assert sorted(await names(client, {"size_max": 2**63 - 1})) == ["big", "small"]


async def test_min_disk_and_min_ram_filters(client: httpx.AsyncClient) -> None:
    # The query's text values once went to PostgreSQL for integer columns: every one a 500.
    await create(client, name="small", min_disk=1, min_ram=512)
    await create(client, name="large", min_disk=20, min_ram=4096)
    assert await names(client, {"min_disk": "20"}) == ["large"]
    assert await names(client, {"min_ram": "512"}) == ["small"]
    assert await names(client, {"min_ram": "1024"}) == []
    assert await names(client, {"min_ram": str(2**31 - 1)}) == []


@pytest.mark.parametrize(
    "params",
    [
        {"protected": "True"},
        {"protected": "1"},
        {"protected": "yes"},
        {"size_min": "-1"},
        {"size_max": "big"},
        {"limit": "-1"},
        {"limit": "many"},
        {"sort_key": "nonsense"},
        {"sort_dir": "sideways"},
        {"sort": "name:up"},
        {"sort": "name", "sort_key": "id"},
        {"created_at": "gte:yesterday"},
        {"visibility": "everyone"},
        {"changes-since": "2020-01-01T00:00:00Z"},
        {"marker": "00000000-0000-0000-0000-000000000000"},
        # Values the database cannot compare were 500s on PostgreSQL.
        {"min_ram": "lots"},
        {"min_disk": "-1"},
        {"min_ram": str(2**31)},
        {"size_min": str(2**63)},
        {"size_max": "99999999999999999999999"},
        {"name": "with\x00nul"},
        {"nul\x00key": "x"},
        {"id": "in:" + ",".join(["x"] * 1001)},
    ],
)
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v2/images", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "400 Bad Request"


async def test_a_listed_image_is_shown_exactly_as_its_own_show(
    make_settings: Any, client_for: Any
) -> None:
    """The page reads with its own statements; each image in it must still be the JSON that
    GET /v2/images/{id} gives the same caller: properties, tags, locations (data uploaded),
    shared images seen by a member, hidden ones, for the owner, a member and an admin."""
    client = await proxy_client(
        make_settings, client_for, show_multiple_locations=True, show_image_direct_url=True
    )
    rich = await new_image(
        client,
        OWNER,
        disk_format="raw",
        container_format="bare",
        tags=["b", "a"],
        os_distro="ubuntu",
        hw_disk_bus="scsi",
        min_ram=64,
    )
    put = await client.put(
        f"/v2/images/{rich}/file", content=b"data" * 1000, headers={**OWNER, **OCTET}
    )
    assert put.status_code == 204, put.text
    shared = await new_image(client, OWNER, visibility="shared", tags=["s"], note="x")
    pending = await new_image(client, OWNER, visibility="shared")
    for image_id in (shared, pending):
        added = await client.post(
            f"/v2/images/{image_id}/members", json={"member": "friend"}, headers=OWNER
        )
        assert added.status_code == 200, added.text
    accepted = await client.put(
        f"/v2/images/{shared}/members/friend", json={"status": "accepted"}, headers=FRIEND
    )
    assert accepted.status_code == 200, accepted.text
    await new_image(client, OWNER, visibility="community", os_hidden=True, name="hidden")
    await new_image(client, ADMIN, visibility="public", name="plain")

    compared = 0
    for caller in (OWNER, FRIEND, ADMIN):
        for query in ("", "?member_status=all", "?os_hidden=true", "?limit=2&sort=name:asc"):
            page = await client.get(f"/v2/images{query}", headers=caller)
            assert page.status_code == 200, page.text
            for listed in page.json()["images"]:
                shown = await client.get(f"/v2/images/{listed['id']}", headers=caller)
                assert shown.status_code == 200, shown.text
                assert listed == shown.json()
                compared += 1
    listed_rich = (await client.get("/v2/images?os_distro=ubuntu", headers=OWNER)).json()
    [image] = listed_rich["images"]
    assert image["tags"] == ["b", "a"]
    assert image["hw_disk_bus"] == "scsi"
    assert len(image["locations"]) == 1
    assert image["direct_url"] == image["locations"][0]["url"]
    assert image["size"] == 4000
    assert compared >= 15
