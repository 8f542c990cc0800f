"""Metadata definitions API (/v2/metadefs/*, /v2/schemas/metadefs/*) on SQLite and PostgreSQL:
every route, Glance's errors, visibility and ownership."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema

from personas import ADMIN, OTHER, OWNER, OWNER_READER, proxy_client

NS = "/v2/metadefs/namespaces"
IMAGE = "OS::Glance::Image"
FLAVOR = "OS::Nova::Flavor"


def full_namespace(name: str = "OS::Test::Full", **fields: Any) -> dict[str, Any]:
    return {
        "namespace": name,
        "display_name": "Full",
        "description": "Everything a namespace may hold.",
        "visibility": "public",
        "protected": False,
        "resource_type_associations": [
            {"name": IMAGE, "prefix": "hw_"},
            {"name": FLAVOR, "prefix": "hw:"},
            {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"},
        ],
        "properties": {
            "cpu_policy": {
                "title": "CPU policy",
                "type": "string",
                "enum": ["shared", "dedicated"],
                "default": "shared",
            },
            "cpu_sockets": {"title": "Sockets", "type": "integer", "minimum": 1, "default": 1},
            "pmu": {"title": "PMU", "type": "boolean", "default": False},
        },
        "objects": [
            {
                "name": "Limits",
                "description": "Caps",
                "required": ["cap"],
                "properties": {"cap": {"title": "Cap", "type": "integer", "maximum": 10}},
            }
        ],
        "tags": [{"name": "alpha"}, {"name": "beta"}],
        **fields,
    }


async def admin_client(make_settings: Any, client_for: Any, **overrides: Any) -> httpx.AsyncClient:
    return await proxy_client(make_settings, client_for, **overrides)


async def create(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] = ADMIN
) -> dict[str, Any]:
    response = await client.post(NS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def names(
    client: httpx.AsyncClient, query: str = "", headers: dict[str, str] = ADMIN
) -> list[str]:
    response = await client.get(f"{NS}{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [ns["namespace"] for ns in response.json()["namespaces"]]


# -- namespaces ---------------------------------------------------------------------------


async def test_create_and_show_a_namespace_with_contents(
    make_settings: Any, client_for: Any
) -> None:
    client = await admin_client(make_settings, client_for)
    response = await client.post(NS, json=full_namespace(), headers=ADMIN)
    assert response.status_code == 201
    assert response.headers["Location"] == f"{NS}/OS::Test::Full"
    created = response.json()
    shown = (await client.get(f"{NS}/OS::Test::Full", headers=ADMIN)).json()
    for body in (created, shown):
        assert body["namespace"] == "OS::Test::Full"
        assert body["display_name"] == "Full"
        assert body["visibility"] == "public"
        assert body["protected"] is False
        assert body["owner"] == "ops"  # the admin's project: no owner was given
        assert body["self"] == f"{NS}/OS::Test::Full"
        assert body["schema"] == "/v2/schemas/metadefs/namespace"
        assert body["created_at"].endswith("Z")
        assert [a["name"] for a in body["resource_type_associations"]] == [
            IMAGE,
            FLAVOR,
            "OS::Cinder::Volume",
        ]
        assert body["resource_type_associations"][2]["properties_target"] == "image"
        # Defaults are rendered as strings, as Glance renders them.
        assert body["properties"] == {
            "cpu_policy": {
                "title": "CPU policy",
                "type": "string",
                "enum": ["shared", "dedicated"],
                "default": "shared",
            },
            "cpu_sockets": {"title": "Sockets", "type": "integer", "minimum": 1, "default": "1"},
            "pmu": {"title": "PMU", "type": "boolean", "default": "False"},
        }
        (limits,) = body["objects"]
        assert limits["name"] == "Limits"
        assert limits["required"] == ["cap"]
        assert limits["properties"] == {"cap": {"title": "Cap", "type": "integer", "maximum": 10}}
        assert limits["self"] == f"{NS}/OS::Test::Full/objects/Limits"
        assert sorted(tag["name"] for tag in body["tags"]) == ["alpha", "beta"]
    # What the API shows validates against the schema it serves.
    schema = (await client.get("/v2/schemas/metadefs/namespace")).json()
    jsonschema.validate(shown, schema)


async def test_show_with_a_resource_type_renders_its_prefix(
    make_settings: Any, client_for: Any
) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, full_namespace())
    image = (await client.get(f"{NS}/OS::Test::Full?resource_type={IMAGE}", headers=ADMIN)).json()
    assert sorted(image["properties"]) == ["hw_cpu_policy", "hw_cpu_sockets", "hw_pmu"]
    assert image["objects"][0]["required"] == ["hw_cap"]
    assert list(image["objects"][0]["properties"]) == ["hw_cap"]
    flavor = (await client.get(f"{NS}/OS::Test::Full?resource_type={FLAVOR}", headers=ADMIN)).json()
    assert sorted(flavor["properties"]) == ["hw:cpu_policy", "hw:cpu_sockets", "hw:pmu"]
    # A resource type the namespace is not associated with changes nothing.
    other = await client.get(f"{NS}/OS::Test::Full?resource_type=OS::Nova::Server", headers=ADMIN)
    other = other.json()
    assert sorted(other["properties"]) == ["cpu_policy", "cpu_sockets", "pmu"]


async def test_create_errors_leave_nothing_behind(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, {"namespace": "OS::Taken"})
    duplicate = await client.post(NS, json={"namespace": "OS::Taken"}, headers=ADMIN)
    assert duplicate.status_code == 409
    assert "OS::Taken" in duplicate.json()["message"]
    cases = [
        # Nested duplicates conflict; a bad nested property is a bad request.
        (full_namespace("OS::Dup", tags=[{"name": "t"}, {"name": "t"}]), 409),
        (full_namespace("OS::Bad", properties={"p": {"title": "P", "type": "strin"}}), 400),
        (
            full_namespace("OS::Bad", objects=[{"name": "o", "properties": {"p": {"type": "x"}}}]),
            400,
        ),
        ({"namespace": "OS::Bad", "visibility": "community"}, 400),
        ({"namespace": "OS::Bad", "extra": True}, 400),
        ({"namespace": "a/b"}, 400),
        ({"namespace": "n" * 81}, 400),
        ({"display_name": "no namespace"}, 400),
        ({"namespace": "OS::Bad", "created_at": "2020-01-01T00:00:00Z"}, 403),
        ({"namespace": "OS::Bad", "self": "/v2/x"}, 403),
    ]
    for body, status in cases:
        response = await client.post(NS, json=body, headers=ADMIN)
        assert response.status_code == status, (body, response.text)
    not_json = await client.post(NS, content=b"{nope", headers=ADMIN)
    assert not_json.status_code == 400
    assert await names(client) == ["OS::Taken"]
    # The failed creates added no resource type either.
    types = (await client.get("/v2/metadefs/resource_types", headers=ADMIN)).json()
    assert types == {"resource_types": []}


async def test_list_filters_paging_and_sorting(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, {"namespace": "B", "visibility": "public", "owner": "owner"})
    await create(client, {"namespace": "A", "owner": "owner"})
    await create(
        client,
        {
            "namespace": "C",
            "visibility": "public",
            "resource_type_associations": [{"name": IMAGE}],
        },
    )
    await create(
        client,
        {
            "namespace": "D",
            "display_name": "first by display name",
            "resource_type_associations": [{"name": FLAVOR}, {"name": IMAGE}],
        },
    )
    await create(client, {"namespace": "E", "resource_type_associations": [{"name": FLAVOR}]})

    assert await names(client, "?sort_key=namespace&sort_dir=asc") == ["A", "B", "C", "D", "E"]
    assert await names(client, "?sort_key=namespace&sort_dir=desc") == ["E", "D", "C", "B", "A"]
    assert (await names(client, "?sort_key=display_name&sort_dir=desc"))[0] == "D"
    assert await names(client, "?visibility=public&sort_key=namespace&sort_dir=asc") == ["B", "C"]
    assert await names(client, "?visibility=private&sort_key=namespace&sort_dir=asc") == [
        "A",
        "D",
        "E",
    ]
    assert await names(client, f"?resource_types={IMAGE}&sort_key=namespace&sort_dir=asc") == [
        "C",
        "D",
    ]
    assert await names(
        client,
        f"?resource_types={IMAGE},{FLAVOR}&visibility=private&sort_key=namespace&sort_dir=asc",
    ) == ["D", "E"]
    listed = (
        await client.get(f"{NS}?resource_types={FLAVOR}&sort_key=namespace", headers=ADMIN)
    ).json()
    # Lists carry each namespace's associations, not its properties or objects.
    assert [a["name"] for a in listed["namespaces"][0]["resource_type_associations"]] == [FLAVOR]
    assert "properties" not in listed["namespaces"][0]

    # Paging: next links carry the query and the marker until the last page.
    seen: list[str] = []
    url = f"{NS}?limit=2&sort_key=namespace&sort_dir=asc"
    pages = 0
    while url:
        page = (await client.get(url, headers=ADMIN)).json()
        assert page["schema"] == "/v2/schemas/metadefs/namespaces"
        assert page["first"] == f"{NS}?limit=2&sort_key=namespace&sort_dir=asc"
        seen += [ns["namespace"] for ns in page["namespaces"]]
        pages += 1
        url = page.get("next", "")
        if url:
            query = parse_qs(urlsplit(url).query)
            assert query["marker"] == [seen[-1]]
            assert query["limit"] == ["2"]
    assert seen == ["A", "B", "C", "D", "E"]
    assert pages == 3
    # Paging one by one by any sort key (ties and NULL display names included) sees each once.
    for key in ("created_at", "updated_at", "display_name", "visibility", "owner", "protected"):
        for direction in ("asc", "desc"):
            url, walked = f"{NS}?limit=1&sort_key={key}&sort_dir={direction}", []
            while url:
                page = (await client.get(url, headers=ADMIN)).json()
                walked += [ns["namespace"] for ns in page["namespaces"]]
                url = page.get("next", "")
            assert sorted(walked) == ["A", "B", "C", "D", "E"], (key, direction, walked)
    assert await names(client, "?limit=0") == []

    for query in (
        "?sort_dir=up",
        "?visibility=shared",
        "?limit=-1",
        "?limit=ten",
        "?sort_key=secret_column",
    ):
        assert (await client.get(f"{NS}{query}", headers=ADMIN)).status_code == 400, query
    assert (await client.get(f"{NS}?marker=nowhere", headers=ADMIN)).status_code == 404


async def test_list_limit_is_capped_by_api_limit_max(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for, api_limit_max=2)
    for name in ("A", "B", "C"):
        await create(client, {"namespace": name})
    page = (await client.get(f"{NS}?limit=50", headers=ADMIN)).json()
    assert len(page["namespaces"]) == 2
    assert "next" in page


async def test_update_replaces_the_namespace_attributes(
    make_settings: Any, client_for: Any
) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, full_namespace("OS::Old", owner="owner"))
    await create(client, {"namespace": "OS::Other"})
    response = await client.put(
        f"{NS}/OS::Old",
        json={"namespace": "OS::New", "description": "renamed", "owner": "owner"},
        headers=ADMIN,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["namespace"] == "OS::New"
    assert body["description"] == "renamed"
    # What the body leaves out is reset to its default, as in Glance.
    assert "display_name" not in body
    assert body["visibility"] == "private"
    assert body["owner"] == "owner"
    assert (await client.get(f"{NS}/OS::Old", headers=ADMIN)).status_code == 404
    # The contents followed the rename.
    shown = (await client.get(f"{NS}/OS::New", headers=ADMIN)).json()
    assert sorted(shown["properties"]) == ["cpu_policy", "cpu_sockets", "pmu"]
    clash = await client.put(f"{NS}/OS::New", json={"namespace": "OS::Other"}, headers=ADMIN)
    assert clash.status_code == 409
    assert (
        await client.put(
            f"{NS}/OS::New", json={"namespace": "OS::New", "updated_at": "x"}, headers=ADMIN
        )
    ).status_code == 403
    assert (
        await client.put(f"{NS}/OS::New", json={"description": "no name"}, headers=ADMIN)
    ).status_code == 400
    assert (
        await client.put(f"{NS}/OS::Gone", json={"namespace": "OS::Gone"}, headers=ADMIN)
    ).status_code == 404
    # Without an owner in the body the namespace goes to the caller's project (Glance).
    moved = await client.put(f"{NS}/OS::New", json={"namespace": "OS::New"}, headers=ADMIN)
    assert moved.json()["owner"] == "ops"


async def test_protected_namespaces_keep_everything(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, full_namespace("OS::Kept", protected=True))
    base = f"{NS}/OS::Kept"
    for url in (
        base,
        f"{base}/objects",
        f"{base}/properties",
        f"{base}/tags",
        f"{base}/objects/Limits",
        f"{base}/properties/cpu_policy",
        f"{base}/tags/alpha",
        f"{base}/resource_types/{IMAGE}",
    ):
        refused = await client.delete(url, headers=ADMIN)
        assert refused.status_code == 403, url
        assert "protected" in refused.json()["message"]
    shown = (await client.get(base, headers=ADMIN)).json()
    assert len(shown["properties"]) == 3
    assert len(shown["objects"]) == 1
    assert len(shown["tags"]) == 2
    assert len(shown["resource_type_associations"]) == 3
    # Changes are allowed; once unprotected, deletes go through.
    unprotect = full_namespace("OS::Kept", protected=False)
    for key in ("properties", "objects", "tags", "resource_type_associations"):
        del unprotect[key]
    assert (await client.put(base, json=unprotect, headers=ADMIN)).status_code == 200
    assert (await client.delete(f"{base}/objects", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{base}/properties", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{base}/tags", headers=ADMIN)).status_code == 204
    emptied = (await client.get(base, headers=ADMIN)).json()
    assert not {"properties", "objects", "tags"} & set(emptied)
    assert len(emptied["resource_type_associations"]) == 3
    assert (await client.delete(base, headers=ADMIN)).status_code == 204
    assert (await client.get(base, headers=ADMIN)).status_code == 404
    assert (await client.delete(base, headers=ADMIN)).status_code == 404
    # Resource types outlive the namespaces associated with them.
    types = (await client.get("/v2/metadefs/resource_types", headers=ADMIN)).json()
    assert sorted(t["name"] for t in types["resource_types"]) == sorted(
        [IMAGE, FLAVOR, "OS::Cinder::Volume"]
    )


# -- objects ------------------------------------------------------------------------------


async def test_objects(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, {"namespace": "OS::Obj"})
    url = f"{NS}/OS::Obj/objects"
    body = {
        "name": "Disk QoS",
        "description": "Disk limits",
        "required": ["read"],
        "properties": {
            "read": {"title": "Read", "type": "integer", "minimum": 0},
            "write": {"title": "Write", "type": "integer", "default": 5},
        },
    }
    created = await client.post(url, json=body, headers=ADMIN)
    assert created.status_code == 201
    obj = created.json()
    assert obj["name"] == "Disk QoS"
    assert obj["required"] == ["read"]
    assert obj["properties"]["write"]["default"] == "5"
    assert obj["self"] == f"{url}/Disk QoS"
    assert obj["schema"] == "/v2/schemas/metadefs/object"
    assert (await client.post(url, json=body, headers=ADMIN)).status_code == 409
    await client.post(url, json={"name": "Other"}, headers=ADMIN)

    listed = (await client.get(url, headers=ADMIN)).json()
    assert listed["schema"] == "/v2/schemas/metadefs/objects"
    assert [o["name"] for o in listed["objects"]] == ["Disk QoS", "Other"]
    assert listed["objects"][1]["required"] == []
    shown = (await client.get(f"{url}/Disk QoS", headers=ADMIN)).json()
    assert shown["properties"] == obj["properties"]
    jsonschema.validate(shown, (await client.get("/v2/schemas/metadefs/object")).json())

    # PUT replaces the whole object (and may rename it).
    updated = await client.put(
        f"{url}/Disk QoS", json={"name": "Disk", "properties": {}}, headers=ADMIN
    )
    assert updated.status_code == 200
    assert updated.json()["properties"] == {}
    assert "description" not in updated.json()
    assert (await client.get(f"{url}/Disk QoS", headers=ADMIN)).status_code == 404
    clash = await client.put(f"{url}/Disk", json={"name": "Other"}, headers=ADMIN)
    assert clash.status_code == 409

    for bad, status in (
        ({"name": "X", "properties": {"p": {"title": "P", "type": "int"}}}, 400),
        (
            {"name": "X", "properties": {"p": {"title": "P", "type": "integer", "minimum": "a"}}},
            400,
        ),
        ({"name": "X", "required": "p"}, 400),
        ({"description": "no name"}, 400),
        ({"name": "X", "self": "/x"}, 403),
    ):
        assert (await client.post(url, json=bad, headers=ADMIN)).status_code == status, bad
    assert (await client.get(f"{url}/Nope", headers=ADMIN)).status_code == 404
    assert (
        await client.put(f"{url}/Nope", json={"name": "Nope"}, headers=ADMIN)
    ).status_code == 404
    assert (await client.delete(f"{url}/Disk", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{url}/Disk", headers=ADMIN)).status_code == 404
    assert (await client.get(f"{NS}/OS::Missing/objects", headers=ADMIN)).status_code == 404


# -- properties ---------------------------------------------------------------------------


async def test_properties(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(
        client,
        {
            "namespace": "OS::Prop",
            "resource_type_associations": [{"name": IMAGE, "prefix": "hw_"}, {"name": FLAVOR}],
        },
    )
    url = f"{NS}/OS::Prop/properties"
    body = {
        "name": "video_model",
        "title": "Video model",
        "type": "string",
        "enum": ["vga", "virtio", "gop", "none"],
        "default": "virtio",
    }
    created = await client.post(url, json=body, headers=ADMIN)
    assert created.status_code == 201
    assert created.json() == body
    assert (await client.post(url, json=body, headers=ADMIN)).status_code == 409

    # A definition that does not validate against the property schema is refused (400).
    for bad in (
        {**body, "name": "x", "type": "text"},
        {**body, "name": "x", "minimum": "low"},
        {**body, "name": "x", "maxLength": -5},
        {**body, "name": "x", "pattern": "([unclosed"},
        {**body, "name": "x", "enum": "vga"},
        {**body, "name": "x", "secret": True},
        {"name": "x", "type": "string"},
        {"title": "no name", "type": "string"},
    ):
        refused = await client.post(url, json=bad, headers=ADMIN)
        assert refused.status_code == 400, bad
    assert (
        await client.post(url, json={**body, "name": "y", "created_at": "x"}, headers=ADMIN)
    ).status_code == 403

    assert (await client.get(f"{url}/video_model", headers=ADMIN)).json() == body
    assert (await client.get(url, headers=ADMIN)).json() == {
        "properties": {"video_model": {k: v for k, v in body.items() if k != "name"}}
    }
    # Addressed as a resource type sees it: the association's prefix in front.
    prefixed = await client.get(f"{url}/hw_video_model?resource_type={IMAGE}", headers=ADMIN)
    assert prefixed.status_code == 200
    assert prefixed.json()["name"] == "video_model"
    wrong_prefix = await client.get(f"{url}/video_model?resource_type={IMAGE}", headers=ADMIN)
    assert wrong_prefix.status_code == 404
    no_prefix = await client.get(f"{url}/video_model?resource_type={FLAVOR}", headers=ADMIN)
    assert no_prefix.status_code == 404
    unassociated = await client.get(f"{url}/hw_video_model?resource_type=OS::X", headers=ADMIN)
    assert unassociated.status_code == 404

    updated = await client.put(
        f"{url}/video_model",
        json={"name": "video", "title": "Video", "type": "string", "enum": ["vga"]},
        headers=ADMIN,
    )
    assert updated.status_code == 200
    assert updated.json() == {"name": "video", "title": "Video", "type": "string", "enum": ["vga"]}
    await client.post(url, json={**body, "name": "other"}, headers=ADMIN)
    clash = await client.put(f"{url}/video", json={**body, "name": "other"}, headers=ADMIN)
    assert clash.status_code == 409
    bad_update = await client.put(
        f"{url}/video", json={**body, "name": "video", "type": "str"}, headers=ADMIN
    )
    assert bad_update.status_code == 400
    assert (await client.get(f"{url}/video_model", headers=ADMIN)).status_code == 404
    assert (await client.delete(f"{url}/video", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{url}/video", headers=ADMIN)).status_code == 404
    assert list((await client.get(url, headers=ADMIN)).json()["properties"]) == ["other"]


# -- tags ---------------------------------------------------------------------------------


async def tag_names(client: httpx.AsyncClient, query: str = "") -> list[str]:
    response = await client.get(f"{NS}/OS::Tags/tags{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return [tag["name"] for tag in response.json()["tags"]]


async def test_tags(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, {"namespace": "OS::Tags"})
    url = f"{NS}/OS::Tags/tags"
    one = await client.post(f"{url}/first", headers=ADMIN)
    assert one.status_code == 201
    assert one.json()["name"] == "first"
    assert one.json()["created_at"].endswith("Z")
    assert (await client.post(f"{url}/first", headers=ADMIN)).status_code == 409
    assert (await client.post(f"{url}/{'t' * 81}", headers=ADMIN)).status_code == 400

    # Bulk create replaces the namespace's tags...
    replaced = await client.post(url, json={"tags": [{"name": "b"}, {"name": "a"}]}, headers=ADMIN)
    assert replaced.status_code == 201
    assert replaced.json() == {"tags": [{"name": "b"}, {"name": "a"}]}
    assert await tag_names(client, "?sort_key=name&sort_dir=asc") == ["a", "b"]
    # ...or adds to them with X-Openstack-Append.
    appended = await client.post(
        url, json={"tags": [{"name": "c"}]}, headers={**ADMIN, "X-Openstack-Append": "True"}
    )
    assert appended.status_code == 201
    assert await tag_names(client, "?sort_key=name&sort_dir=asc") == ["a", "b", "c"]
    # A name already there (appending) or twice in the body conflicts, and nothing changes.
    for body, headers in (
        ({"tags": [{"name": "d"}, {"name": "a"}]}, {"X-Openstack-Append": "true"}),
        ({"tags": [{"name": "d"}, {"name": "d"}]}, {}),
    ):
        assert (await client.post(url, json=body, headers={**ADMIN, **headers})).status_code == 409
    assert await tag_names(client, "?sort_key=name&sort_dir=asc") == ["a", "b", "c"]
    # An empty list changes nothing either, as in Glance.
    assert (await client.post(url, json={"tags": []}, headers=ADMIN)).status_code == 201
    assert await tag_names(client, "?sort_key=name") == ["c", "b", "a"]
    for bad in ({"tags": [{"title": "x"}]}, {"tags": "a"}, {"names": []}):
        assert (await client.post(url, json=bad, headers=ADMIN)).status_code == 400, bad

    assert await tag_names(client, "?sort_key=name&sort_dir=asc&limit=2") == ["a", "b"]
    assert await tag_names(client, "?sort_key=name&sort_dir=asc&limit=2&marker=b") == ["c"]
    assert await tag_names(client, "?limit=0&sort_key=name") == ["c", "b", "a"]
    for query in ("?sort_dir=sideways", "?limit=-1", "?sort_key=colour"):
        assert (await client.get(f"{url}{query}", headers=ADMIN)).status_code == 400, query
    assert (await client.get(f"{url}?marker=zz", headers=ADMIN)).status_code == 404

    shown = await client.get(f"{url}/a", headers=ADMIN)
    assert shown.status_code == 200
    assert set(shown.json()) == {"name", "created_at", "updated_at"}
    renamed = await client.put(f"{url}/a", json={"name": "z"}, headers=ADMIN)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "z"
    assert (await client.put(f"{url}/z", json={"name": "b"}, headers=ADMIN)).status_code == 409
    assert (
        await client.put(f"{url}/z", json={"name": "y", "created_at": "x"}, headers=ADMIN)
    ).status_code == 403
    assert (await client.put(f"{url}/nope", json={"name": "y"}, headers=ADMIN)).status_code == 404
    assert (await client.delete(f"{url}/z", headers=ADMIN)).status_code == 204
    assert (await client.get(f"{url}/z", headers=ADMIN)).status_code == 404
    assert await tag_names(client, "?sort_key=name&sort_dir=asc") == ["b", "c"]
    assert (await client.delete(url, headers=ADMIN)).status_code == 204
    assert await tag_names(client) == []


# -- resource types -----------------------------------------------------------------------


async def test_resource_types_and_associations(make_settings: Any, client_for: Any) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, {"namespace": "OS::Assoc"})
    url = f"{NS}/OS::Assoc/resource_types"
    assert (await client.get(url, headers=ADMIN)).json() == {"resource_type_associations": []}
    created = await client.post(
        url,
        json={"name": FLAVOR, "prefix": "hw:", "properties_target": "extra_specs"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["prefix"], body["properties_target"]) == (
        FLAVOR,
        "hw:",
        "extra_specs",
    )
    assert body["created_at"].endswith("Z")
    jsonschema.validate(body, (await client.get("/v2/schemas/metadefs/resource_type")).json())
    assert (await client.post(url, json={"name": FLAVOR}, headers=ADMIN)).status_code == 409
    await client.post(url, json={"name": IMAGE}, headers=ADMIN)
    listed = (await client.get(url, headers=ADMIN)).json()["resource_type_associations"]
    assert [a["name"] for a in listed] == [FLAVOR, IMAGE]
    assert "prefix" not in listed[1]
    # The association created the resource types.
    types = (await client.get("/v2/metadefs/resource_types", headers=ADMIN)).json()
    assert [t["name"] for t in types["resource_types"]] == [IMAGE, FLAVOR]
    assert set(types["resource_types"][0]) == {"name", "created_at", "updated_at"}

    for bad, status in (
        ({"prefix": "hw_"}, 400),
        ({"name": "R", "prefix": "p" * 81}, 400),
        ({"name": "R", "colour": "red"}, 400),
        ({"name": "R", "created_at": "x"}, 403),
    ):
        assert (await client.post(url, json=bad, headers=ADMIN)).status_code == status, bad
    assert (await client.delete(f"{url}/{FLAVOR}", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{url}/{FLAVOR}", headers=ADMIN)).status_code == 404
    assert [
        a["name"]
        for a in (await client.get(url, headers=ADMIN)).json()["resource_type_associations"]
    ] == [IMAGE]
    types = (await client.get("/v2/metadefs/resource_types", headers=ADMIN)).json()
    assert [t["name"] for t in types["resource_types"]] == [IMAGE, FLAVOR]
    assert (
        await client.post(f"{NS}/OS::Missing/resource_types", json={"name": IMAGE}, headers=ADMIN)
    ).status_code == 404


# -- who sees what ------------------------------------------------------------------------


async def test_private_namespaces_exist_only_for_their_owner(
    make_settings: Any, client_for: Any
) -> None:
    client = await admin_client(make_settings, client_for)
    await create(client, full_namespace("OS::Mine", visibility="private", owner="owner"))
    await create(client, full_namespace("OS::Shared", visibility="public", owner="owner"))
    await create(client, full_namespace("OS::Theirs", visibility="private", owner="other"))
    assert await names(client, "?sort_key=namespace&sort_dir=asc", OWNER_READER) == [
        "OS::Mine",
        "OS::Shared",
    ]
    assert await names(client, "?sort_key=namespace&sort_dir=asc", OTHER) == [
        "OS::Shared",
        "OS::Theirs",
    ]
    assert len(await names(client)) == 3
    for suffix in (
        "",
        "/objects",
        "/objects/Limits",
        "/properties",
        "/properties/pmu",
        "/tags",
        "/tags/alpha",
        "/resource_types",
    ):
        assert (await client.get(f"{NS}/OS::Mine{suffix}", headers=OWNER_READER)).status_code == 200
        assert (await client.get(f"{NS}/OS::Mine{suffix}", headers=OTHER)).status_code == 404
        assert (await client.get(f"{NS}/OS::Shared{suffix}", headers=OTHER)).status_code == 200
    # Changes are for admins: 403 where the caller may read, 404 where it may not.
    rename = {"namespace": "OS::Mine"}
    assert (await client.put(f"{NS}/OS::Mine", json=rename, headers=OWNER)).status_code == 403
    assert (await client.put(f"{NS}/OS::Mine", json=rename, headers=OTHER)).status_code == 404
    assert (await client.delete(f"{NS}/OS::Shared", headers=OTHER)).status_code == 403
    assert (await client.post(f"{NS}/OS::Shared/tags/x", headers=OWNER)).status_code == 403
    assert (await client.post(NS, json={"namespace": "OS::New"}, headers=OWNER)).status_code == 403
    # The private namespace of another project is not even a marker.
    assert (await client.get(f"{NS}?marker=OS::Theirs", headers=OWNER_READER)).status_code == 404


async def test_a_policy_file_may_let_members_create_namespaces(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        '"add_metadef_namespace": "role:member"\n"modify_metadef_namespace": "role:member"\n'
    )
    client = await admin_client(make_settings, client_for, oslo_policy={"policy_file": str(policy)})
    own = await client.post(NS, json={"namespace": "OS::Own"}, headers=OWNER)
    assert own.status_code == 201
    assert own.json()["owner"] == "owner"
    # Only an admin may create a namespace for another project.
    given = await client.post(NS, json={"namespace": "OS::Gift", "owner": "other"}, headers=OWNER)
    assert given.status_code == 403
    # Other rules keep their defaults: contents still need an admin.
    nested = await client.post(
        NS, json={"namespace": "OS::Nested", "tags": [{"name": "t"}]}, headers=OWNER
    )
    assert nested.status_code == 403
    assert await names(client, "", OWNER) == ["OS::Own"]
    # A member changes its own namespace, but may not take another project's, nor give its own.
    kept = await client.put(
        f"{NS}/OS::Own", json={"namespace": "OS::Own", "description": "d"}, headers=OWNER
    )
    assert kept.status_code == 200
    assert kept.json()["owner"] == "owner"
    given_away = {"namespace": "OS::Own", "owner": "other"}
    assert (await client.put(f"{NS}/OS::Own", json=given_away, headers=OWNER)).status_code == 403
    await create(client, {"namespace": "OS::Public", "visibility": "public", "owner": "other"})
    taken = await client.put(
        f"{NS}/OS::Public", json={"namespace": "OS::Public", "visibility": "public"}, headers=OWNER
    )
    assert taken.status_code == 403
    assert (await client.get(f"{NS}/OS::Public", headers=ADMIN)).json()["owner"] == "other"


# -- schemas ------------------------------------------------------------------------------


async def test_the_ten_metadef_schemas(client: httpx.AsyncClient) -> None:
    expected = {
        "namespace": "namespace",
        "namespaces": "namespaces",
        "resource_type": "resource_type_association",
        "resource_types": "resource_type_associations",
        "property": "property",
        "properties": "properties",
        "object": "object",
        "objects": "objects",
        "tag": "tag",
        "tags": "tags",
    }
    for path, name in expected.items():
        response = await client.get(f"/v2/schemas/metadefs/{path}")
        assert response.status_code == 200, path
        schema = response.json()
        assert schema["name"] == name
        jsonschema.Draft4Validator.check_schema(schema)
    assert (await client.get("/v2/schemas/metadefs/resource_type_association")).status_code == 404
    assert (await client.post("/v2/schemas/metadefs/namespace")).status_code == 405
    namespace = (await client.get("/v2/schemas/metadefs/namespace")).json()
    assert namespace["additionalProperties"] is False
    assert namespace["properties"]["visibility"]["enum"] == ["public", "private"]
    assert set(namespace["definitions"]) == {
        "positiveInteger",
        "positiveIntegerDefault0",
        "stringArray",
        "property",
    }
    prop = (await client.get("/v2/schemas/metadefs/property")).json()
    assert prop["properties"]["type"]["enum"] == [
        "array",
        "boolean",
        "integer",
        "number",
        "object",
        "string",
        None,
    ]
    assert sorted(prop["required"]) == ["name", "title", "type"]
    properties = (await client.get("/v2/schemas/metadefs/properties")).json()
    assert properties["properties"]["properties"]["type"] == "object"
    assert sorted(properties["properties"]["properties"]["additionalProperties"]["required"]) == [
        "title",
        "type",
    ]
