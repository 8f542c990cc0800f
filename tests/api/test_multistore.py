"""Train's multi-store semantics: stores info, store choice, weights, per-store delete, usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import ImageLocation

OCTET = {"Content-Type": "application/octet-stream"}
PROJECT = "project-a"
MEMBER = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": PROJECT,
    "X-User-Id": "alice",
    "X-Roles": "member,reader",
}
ADMIN = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": PROJECT,
    "X-User-Id": "root",
    "X-Roles": "admin,member,reader",
}


def multistore(make_settings: Any, tmp_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "enabled_backends": "fast:file, cheap:file",
        "glance_store": {"default_backend": "cheap"},
        "stores": {
            "fast": {
                "filesystem_store_datadir": str(tmp_path / "fast"),
                "store_description": "Fast, small",
                "weight": 100,
            },
            "cheap": {"filesystem_store_datadir": str(tmp_path / "cheap"), "weight": 10},
        },
    }
    options.update(overrides)
    settings: Settings = make_settings(**options)
    return settings


@pytest.fixture
async def client(make_settings: Any, client_for: Any, tmp_path: Path) -> httpx.AsyncClient:
    settings = multistore(make_settings, tmp_path, auth_strategy="trusted-proxy")
    result: httpx.AsyncClient = await client_for(settings)
    result.headers.update(ADMIN)
    return result


async def create_with_data(
    client: httpx.AsyncClient, data: bytes, store: str | None = None
) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", "name": "multi"}
    image: dict[str, Any] = (await client.post("/v2/images", json=body)).json()
    headers = dict(OCTET)
    if store is not None:
        headers["X-Image-Meta-Store"] = store
    response = await client.put(f"/v2/images/{image['id']}/file", content=data, headers=headers)
    assert response.status_code == 204, response.text
    return image


async def add_copy(database: Database, image_id: str, path: Path, store: str) -> None:
    """Give an image a second location, as a copy to another store would."""
    async with database.write() as session:
        session.add(
            ImageLocation(image_id=image_id, value=path.as_uri(), meta_data={"store": store})
        )


async def test_create_names_the_stores(client: httpx.AsyncClient) -> None:
    body = {"disk_format": "raw", "container_format": "bare"}
    created = await client.post("/v2/images", json=body)
    assert created.status_code == 201
    assert created.headers["OpenStack-image-store-ids"] == "fast,cheap"


async def test_stores_info_lists_user_stores_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/info/stores")
    assert response.status_code == 200
    assert response.json() == {
        "stores": [
            {"id": "fast", "description": "Fast, small"},
            {"id": "cheap", "default": "true"},
        ]
    }


async def test_stores_detail_is_for_admins(client: httpx.AsyncClient, tmp_path: Path) -> None:
    detail = await client.get("/v2/info/stores/detail")
    assert detail.status_code == 200
    fast = detail.json()["stores"][0]
    assert fast["id"] == "fast"
    assert fast["type"] == "file"
    assert fast["weight"] == 100
    assert fast["properties"]["data_dir"] == str(tmp_path / "fast")
    denied = await client.get("/v2/info/stores/detail", headers=MEMBER)
    assert denied.status_code == 403


async def test_stores_info_needs_multistore(client_for: Any, settings: Settings) -> None:
    single = await client_for(settings)
    assert (await single.get("/v2/info/stores")).status_code == 404
    assert (await single.get("/v2/info/stores/detail")).status_code == 404


async def test_upload_to_chosen_store_and_unknown_store(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    default = await create_with_data(client, b"to the default")
    chosen = await create_with_data(client, b"to fast", store="fast")
    assert (await client.get(f"/v2/images/{default['id']}")).json()["stores"] == "cheap"
    assert (await client.get(f"/v2/images/{chosen['id']}")).json()["stores"] == "fast"
    assert (tmp_path / "fast" / chosen["id"]).read_bytes() == b"to fast"
    body = {"disk_format": "raw", "container_format": "bare"}
    image = (await client.post("/v2/images", json=body)).json()
    response = await client.put(
        f"/v2/images/{image['id']}/file",
        content=b"x",
        headers={**OCTET, "X-Image-Meta-Store": "nowhere"},
    )
    assert response.status_code == 400
    assert "nowhere" in response.text
    assert (await client.get(f"/v2/images/{image['id']}")).json()["status"] == "queued"


async def test_download_reads_by_weight_prefers_and_falls_back(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    image = await create_with_data(client, b"cheap copy", store="cheap")
    # A copy in the heavier store, recognisable by its bytes (same length as the original).
    fast_copy = tmp_path / "fast" / image["id"]
    fast_copy.parent.mkdir(parents=True, exist_ok=True)
    fast_copy.write_bytes(b"fast  copy")
    await add_copy(database, image["id"], fast_copy, "fast")
    url = f"/v2/images/{image['id']}/file"
    assert (await client.get(url)).content == b"fast  copy"
    assert (await client.get(url, params={"prefer": "cheap"})).content == b"cheap copy"
    assert (await client.get(url, params={"prefer": "cheap,fast"})).content == b"cheap copy"
    unknown = await client.get(url, params={"prefer": "tape"})
    assert unknown.status_code == 400
    assert "tape" in unknown.text
    fast_copy.unlink()
    assert (await client.get(url)).content == b"cheap copy"
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert shown["stores"] == "fast,cheap"


async def test_prefer_needs_multistore(client_for: Any, settings: Settings) -> None:
    single = await client_for(settings)
    body = {"disk_format": "raw", "container_format": "bare"}
    image = (await single.post("/v2/images", json=body)).json()
    await single.put(f"/v2/images/{image['id']}/file", content=b"data", headers=OCTET)
    response = await single.get(f"/v2/images/{image['id']}/file", params={"prefer": "file"})
    assert response.status_code == 400


async def test_delete_from_one_store(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    data = b"kept in cheap"
    image = await create_with_data(client, data, store="cheap")
    fast_copy = tmp_path / "fast" / image["id"]
    fast_copy.parent.mkdir(parents=True, exist_ok=True)
    fast_copy.write_bytes(data)
    await add_copy(database, image["id"], fast_copy, "fast")

    denied = await client.delete(f"/v2/stores/fast/{image['id']}", headers=MEMBER)
    assert denied.status_code == 403
    assert (await client.delete(f"/v2/stores/tape/{image['id']}")).status_code == 409
    missing = await client.delete("/v2/stores/fast/8f2b5d6e-0000-4000-8000-000000000000")
    assert missing.status_code == 404

    assert (await client.delete(f"/v2/stores/fast/{image['id']}")).status_code == 204
    assert not fast_copy.exists()
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert shown["stores"] == "cheap"
    assert (await client.get(f"/v2/images/{image['id']}/file")).content == data
    # Not in fast any more, and the last copy cannot go this way.
    assert (await client.delete(f"/v2/stores/fast/{image['id']}")).status_code == 403
    assert (await client.delete(f"/v2/stores/cheap/{image['id']}")).status_code == 403
    async with database.read() as session:
        statuses = (
            await session.execute(
                sa.select(ImageLocation.status, ImageLocation.meta_data).where(
                    ImageLocation.image_id == image["id"]
                )
            )
        ).all()
    assert sorted((status, meta["store"]) for status, meta in statuses) == [
        ("active", "cheap"),
        ("deleted", "fast"),
    ]


async def test_delete_from_store_needs_an_active_image_in_that_store(
    client: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    queued = (
        await client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    ).json()
    assert (await client.delete(f"/v2/stores/fast/{queued['id']}")).status_code == 409
    image = await create_with_data(client, b"abc", store="cheap")
    other = tmp_path / "elsewhere"
    other.write_bytes(b"abc")
    await add_copy(database, image["id"], other, "cheap")
    response = await client.delete(f"/v2/stores/fast/{image['id']}")
    assert response.status_code == 404
    assert "not stored in store fast" in response.text


async def test_delete_from_store_needs_multistore(client_for: Any, settings: Settings) -> None:
    single = await client_for(settings)
    response = await single.delete("/v2/stores/file/8f2b5d6e-0000-4000-8000-000000000000")
    assert response.status_code == 404


async def test_deleting_an_image_in_a_disabled_store_succeeds(
    make_settings: Any,
    client_for: Any,
    database: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = await client_for(multistore(make_settings, tmp_path))
    image = await create_with_data(before, b"left in cheap", store="cheap")
    only_fast = multistore(
        make_settings,
        tmp_path,
        enabled_backends="fast:file",
        glance_store={"default_backend": "fast"},
    )
    after = await client_for(only_fast)
    assert (await after.delete(f"/v2/images/{image['id']}")).status_code == 204
    assert (await after.get(f"/v2/images/{image['id']}")).status_code == 404
    assert (tmp_path / "cheap" / image["id"]).read_bytes() == b"left in cheap"
    assert any("not enabled here" in record.getMessage() for record in caplog.records)
    # The deletion stays recorded for a scrubber that has the store.
    async with database.read() as session:
        statuses = (
            await session.execute(
                sa.select(ImageLocation.status).where(ImageLocation.image_id == image["id"])
            )
        ).scalars()
        assert list(statuses) == ["pending_delete"]


async def test_legacy_backend_metadata_is_rewritten_on_read(
    client: httpx.AsyncClient, database: Database
) -> None:
    image = await create_with_data(client, b"old row", store="fast")
    async with database.write() as session:
        await session.execute(
            sa.update(ImageLocation)
            .where(ImageLocation.image_id == image["id"])
            .values(meta_data={"backend": "fast"})
        )
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert shown["stores"] == "fast"
    assert (await client.get(f"/v2/images/{image['id']}/file")).content == b"old row"
    async with database.read() as session:
        rows = (
            await session.execute(
                sa.select(ImageLocation.meta_data).where(ImageLocation.image_id == image["id"])
            )
        ).scalars()
        assert list(rows) == [{"store": "fast"}]


async def test_usage_counts_the_callers_images(client: httpx.AsyncClient) -> None:
    data = b"u" * (3 * 1024 * 1024)
    await create_with_data(client, data)
    await client.post("/v2/images", json={"name": "empty"})
    other = await client.get("/v2/info/usage", headers={**MEMBER, "X-Project-Id": "project-b"})
    assert other.json()["usage"]["image_count_total"] == {"usage": 0, "limit": -1}
    usage = (await client.get("/v2/info/usage")).json()["usage"]
    assert usage == {
        "image_size_total": {"usage": 3, "limit": -1},
        "image_stage_total": {"usage": 0, "limit": -1},
        "image_count_total": {"usage": 2, "limit": -1},
        "image_count_uploading": {"usage": 0, "limit": -1},
    }


async def test_usage_limit_follows_the_storage_quota(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    client = await client_for(multistore(make_settings, tmp_path, user_storage_quota="10MB"))
    usage = (await client.get("/v2/info/usage")).json()["usage"]
    assert usage["image_size_total"] == {"usage": 0, "limit": 10}


async def test_stores_of_equal_weight_show_in_id_order_whatever_the_write_order(
    make_settings: Any, client_for: Any, tmp_path: Path, database: Database
) -> None:
    """A multi-store import records each store as its write finishes; the image shows them by
    weight, then store id (tempest and Glance expect one stable order), not by that race."""
    settings = multistore(
        make_settings,
        tmp_path,
        auth_strategy="trusted-proxy",
        enabled_backends="fast:file, cheap:file, bulk:file",
        stores={
            name: {"filesystem_store_datadir": str(tmp_path / name), "weight": weight}
            for name, weight in (("fast", 0), ("cheap", 0), ("bulk", 5))
        },
    )
    client = await client_for(settings)
    client.headers.update(ADMIN)
    image = await create_with_data(client, b"0123456789", store="fast")
    for store in ("cheap", "bulk"):  # written after fast, as a slower store's copy would be
        copy = tmp_path / store / image["id"]
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(b"0123456789")
        await add_copy(database, image["id"], copy, store)
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert shown["stores"] == "bulk,cheap,fast"
    listed = (await client.get("/v2/images")).json()["images"]
    assert [entry["stores"] for entry in listed] == ["bulk,cheap,fast"]
