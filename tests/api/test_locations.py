"""Image locations: the 2.17 API, JSON-patch on /locations, and who may point where."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.tables import Image, ImageLocation
from glimpse.logs import ContextFilter
from glimpse.services.deletion import DeletionService
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from store_servers import HttpServer

PROJECT = "project-a"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}


def persona(roles: str, project: str = PROJECT) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-Project-Id": project,
        "X-User-Id": f"user-{roles}",
        "X-Roles": roles,
    }


MEMBER = persona("member,reader")
SERVICE = persona("member,reader,service")
ADMIN = persona("admin,member,reader")


def make(make_settings: Any, tmp_path: Path, **overrides: Any) -> Settings:
    settings: Settings = make_settings(
        auth_strategy="trusted-proxy",
        enabled_backends="fast:file, cheap:file",
        glance_store={"default_backend": "fast"},
        stores={
            "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
            "cheap": {"filesystem_store_datadir": str(tmp_path / "cheap")},
        },
        **overrides,
    )
    return settings


@pytest.fixture
async def client(make_settings: Any, client_for: Any, tmp_path: Path) -> httpx.AsyncClient:
    result: httpx.AsyncClient = await client_for(make(make_settings, tmp_path))
    return result


@pytest.fixture
async def worker(make_settings: Any, tmp_path: Path) -> AsyncIterator[WorkerRuntime]:
    """A worker's context on the same stores and database as `client`."""
    context = WorkerRuntime.build(make(make_settings, tmp_path))
    yield context
    await context.aclose()


@pytest.fixture
async def visible(make_settings: Any, client_for: Any, tmp_path: Path) -> httpx.AsyncClient:
    settings = make(make_settings, tmp_path, show_multiple_locations=True)
    result: httpx.AsyncClient = await client_for(settings)
    return result


async def queued_image(client: httpx.AsyncClient) -> str:
    body = {"disk_format": "raw", "container_format": "bare"}
    response = await client.post("/v2/images", json=body, headers=MEMBER)
    assert response.status_code == 201
    image_id: str = response.json()["id"]
    return image_id


def stored_object(tmp_path: Path, store: str, name: str, data: bytes) -> str:
    """Data already in a store (as a volume service would have written it)."""
    path = tmp_path / store / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


async def added(
    client: httpx.AsyncClient,
    worker: WorkerRuntime,
    image_id: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, Any]:
    """POST the location (202: a pending location_import task), run the task as a worker
    would, and return it as the API then shows it."""
    response = await client.post(f"/v2/images/{image_id}/locations", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.content == b""
    tasks = (await client.get(f"/v2/images/{image_id}/tasks", headers=MEMBER)).json()["tasks"]
    [pending] = [task for task in tasks if task["status"] == "pending"]
    assert pending["type"] == "location_import"
    assert (await image(client, image_id))["status"] == "queued"
    await import_.run(worker, pending["id"])
    response = await client.get(f"/v2/tasks/{pending['id']}", headers=ADMIN)
    task: dict[str, Any] = response.json()
    return task


async def image(client: httpx.AsyncClient, image_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = (await client.get(f"/v2/images/{image_id}", headers=MEMBER)).json()
    return shown


async def test_service_adds_a_location_and_the_data_is_hashed(
    client: httpx.AsyncClient, worker: WorkerRuntime, tmp_path: Path
) -> None:
    data = b"volume snapshot bytes" * 1000
    url = stored_object(tmp_path, "cheap", "snap-1", data)
    image_id = await queued_image(client)
    task = await added(client, worker, image_id, {"url": url}, SERVICE)
    assert (task["status"], task["result"], task["message"]) == (
        "success",
        {"image_id": image_id},
        "",
    )
    assert task["input"] == {"image_id": image_id, "loc_url": url, "validation_data": {}}
    shown = await image(client, image_id)
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["stores"] == "cheap"
    assert "os_glance_import_task" not in shown
    downloaded = await client.get(f"/v2/images/{image_id}/file", headers=MEMBER)
    assert downloaded.content == data
    listed = await client.get(f"/v2/images/{image_id}/locations", headers=SERVICE)
    assert listed.json() == [{"url": url, "metadata": {"store": "cheap"}}]
    assert (await client.get(f"/v2/images/{image_id}/locations", headers=MEMBER)).status_code == 403


async def test_validation_data_must_match_the_data(
    client: httpx.AsyncClient, worker: WorkerRuntime, tmp_path: Path
) -> None:
    data = b"abc" * 100
    url = stored_object(tmp_path, "fast", "obj", data)
    image_id = await queued_image(client)
    actual = hashlib.sha512(data).hexdigest()
    wrong = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(b"other").hexdigest()}
    task = await added(client, worker, image_id, {"url": url, "validation_data": wrong}, SERVICE)
    assert task["status"] == "failure"
    assert task["message"] == (
        f"os_hash_value: ({wrong['os_hash_value']}) not matched with actual "
        f"os_hash_value: ({actual})"
    )
    shown = await image(client, image_id)
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert (shown["os_hash_algo"], shown["os_hash_value"], "stores" in shown) == (None, None, False)
    assert (tmp_path / "fast" / "obj").read_bytes() == data  # not this service's to delete
    right = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(data).hexdigest().upper()}
    task = await added(client, worker, image_id, {"url": url, "validation_data": right}, SERVICE)
    assert task["status"] == "success"
    shown = await image(client, image_id)
    assert (shown["status"], shown["os_hash_algo"], shown["os_hash_value"]) == (
        "active",
        "sha256",
        right["os_hash_value"].lower(),
    )
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    tasks = (await client.get(f"/v2/images/{image_id}/tasks", headers=MEMBER)).json()["tasks"]
    assert sorted(t["status"] for t in tasks) == ["failure", "success"]


SHA512 = hashlib.sha512(b"x").hexdigest()


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ({"os_hash_value": SHA512}, "needs both os_hash_algo and os_hash_value"),
        ({"os_hash_algo": "sha512"}, "needs both os_hash_algo and os_hash_value"),
        ({"os_hash_algo": "sha512", "os_hash_value": "zz"}, "not a valid hexadecimal"),
        ({"os_hash_algo": "sha512", "os_hash_value": "abcd"}, "not the correct size"),
        ({"os_hash_algo": "sha256", "os_hash_value": SHA512}, "(should be (32) bytes)"),
        ({"os_hash_algo": "sha123", "os_hash_value": SHA512}, "is not one of"),
        ({"os_hash_algo": "sha512", "os_hash_value": "a" * 130}, "longer than 128"),
        ({"os_hash_algo": "md5", "os_hash_value": 5}, "must be strings"),
        ({"checksum": "0" * 32}, "may not hold checksum"),
        (None, "must be an object"),
    ],
)
async def test_bad_validation_data(
    client: httpx.AsyncClient, tmp_path: Path, validation: Any, message: str
) -> None:
    url = stored_object(tmp_path, "fast", "obj", b"x")
    image_id = await queued_image(client)
    response = await client.post(
        f"/v2/images/{image_id}/locations",
        json={"url": url, "validation_data": validation},
        headers=SERVICE,
    )
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert (await client.get(f"/v2/images/{image_id}/tasks", headers=MEMBER)).json() == {
        "tasks": []
    }


async def test_who_may_point_where(
    client: httpx.AsyncClient, worker: WorkerRuntime, tmp_path: Path
) -> None:
    data = b"data outside any store"
    image_id = await queued_image(client)
    # Ordinary users may add only http(s) locations, and only with an http store enabled.
    url = stored_object(tmp_path, "fast", "loose", data)
    member = await client.post(
        f"/v2/images/{image_id}/locations", json={"url": url}, headers=MEMBER
    )
    assert member.status_code == 403
    assert member.json()["message"] == (
        "http store must be enabled to use location API by normal user."
    )
    # A file outside every store's directory is no location at all: the task fails on it.
    outside = tmp_path / "elsewhere"
    outside.write_bytes(data)
    task = await added(client, worker, image_id, {"url": outside.as_uri()}, SERVICE)
    assert (task["status"], task["message"]) == ("failure", f"Invalid location: {outside.as_uri()}")
    shown = await image(client, image_id)
    assert (shown["status"], shown["size"], "os_glance_import_task" in shown) == (
        "queued",
        None,
        False,
    )
    assert outside.read_bytes() == data


async def test_one_url_many_images_and_the_last_one_takes_the_data(
    client: httpx.AsyncClient, worker: WorkerRuntime, tmp_path: Path
) -> None:
    """As in Glance, a service may point several images at the same data (another image's
    included); deleting one of them leaves the data to the others."""
    data = b"shared volume data" * 100
    owner = await queued_image(client)
    uploaded = await client.put(
        f"/v2/images/{owner}/file", content=data, headers={**OCTET, **MEMBER}
    )
    assert uploaded.status_code == 204
    path = tmp_path / "fast" / owner
    borrowers = [await queued_image(client) for _ in range(2)]
    for borrower in borrowers:
        task = await added(client, worker, borrower, {"url": path.as_uri()}, SERVICE)
        assert task["status"] == "success", task["message"]
        assert (await image(client, borrower))["status"] == "active"
    for image_id in (owner, borrowers[0]):
        assert (await client.delete(f"/v2/images/{image_id}", headers=MEMBER)).status_code == 204
        assert path.read_bytes() == data
        downloaded = await client.get(f"/v2/images/{borrowers[1]}/file", headers=MEMBER)
        assert downloaded.content == data
    assert (await client.delete(f"/v2/images/{borrowers[1]}", headers=MEMBER)).status_code == 204
    assert not path.exists()


async def test_locations_only_for_queued_images(client: httpx.AsyncClient, tmp_path: Path) -> None:
    image_id = await queued_image(client)
    url = stored_object(tmp_path, "fast", "late", b"late")
    body = await client.post(f"/v2/images/{image_id}/locations", json={"uri": url}, headers=SERVICE)
    assert body.status_code == 400
    first = await client.post(
        f"/v2/images/{image_id}/locations", json={"url": url}, headers=SERVICE
    )
    assert first.status_code == 202
    # The first task holds the image until it ends.
    second = await client.post(
        f"/v2/images/{image_id}/locations", json={"url": url}, headers=SERVICE
    )
    assert second.status_code == 409
    other = await queued_image(client)
    await client.put(f"/v2/images/{other}/file", content=b"data", headers={**OCTET, **MEMBER})
    response = await client.post(
        f"/v2/images/{other}/locations", json={"url": url}, headers=SERVICE
    )
    assert response.status_code == 409
    assert response.json()["message"] == (
        "It's not allowed to add locations if image status is active."
    )


async def test_without_secure_hash_the_caller_s_hashes_are_taken(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = make(make_settings, tmp_path, do_secure_hash="false")
    client = await client_for(settings)
    worker = WorkerRuntime.build(settings)
    try:
        data = b"never read"
        url = stored_object(tmp_path, "fast", "unread", data)
        given = {"os_hash_algo": "sha256", "os_hash_value": "ab" * 32}
        first = await queued_image(client)
        task = await added(client, worker, first, {"url": url, "validation_data": given}, SERVICE)
        assert task["status"] == "success"
        shown = await image(client, first)
        assert (shown["status"], shown["size"], shown["checksum"]) == ("active", len(data), None)
        assert (shown["os_hash_algo"], shown["os_hash_value"]) == ("sha256", "ab" * 32)
        second = await queued_image(client)
        task = await added(client, worker, second, {"url": url}, SERVICE)
        shown = await image(client, second)
        assert (shown["status"], shown["size"], shown["os_hash_value"]) == (
            "active",
            len(data),
            None,
        )
        # Glance's option covers the locations API only: uploaded data is always hashed.
        uploaded = await queued_image(client)
        put = await client.put(
            f"/v2/images/{uploaded}/file", content=data, headers={**OCTET, **MEMBER}
        )
        assert put.status_code == 204
        shown = await image(client, uploaded)
        assert (shown["checksum"], shown["os_hash_algo"], shown["os_hash_value"]) == (
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
            settings.hashing_algorithm,
            hashlib.new(settings.hashing_algorithm, data).hexdigest(),
        )
    finally:
        await worker.aclose()


async def test_patch_locations_needs_show_multiple_locations(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    image_id = await queued_image(client)
    url = stored_object(tmp_path, "fast", "obj", b"x")
    op = [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}]
    response = await client.patch(f"/v2/images/{image_id}", json=op, headers={**PATCH, **ADMIN})
    assert response.status_code == 403
    assert "locations are invisible" in response.text
    assert "locations" not in (await client.get(f"/v2/images/{image_id}", headers=MEMBER)).json()


async def test_patch_add_and_remove_locations(visible: httpx.AsyncClient, tmp_path: Path) -> None:
    first = b"first copy"
    first_url = stored_object(tmp_path, "fast", "one", first)
    second_url = stored_object(tmp_path, "cheap", "two", first)
    image_id = await queued_image(visible)
    add = [
        {
            "op": "add",
            "path": "/locations/-",
            "value": {
                "url": first_url,
                "metadata": {"note": "x"},
                "validation_data": {
                    "checksum": hashlib.md5(first, usedforsecurity=False).hexdigest()
                },
            },
        }
    ]
    # A member's file:// URL: as in Glance's patch path, no store takes it.
    denied = await visible.patch(f"/v2/images/{image_id}", json=add, headers={**PATCH, **MEMBER})
    assert denied.status_code == 400
    assert f"Invalid location: {first_url}" in denied.json()["message"]
    response = await visible.patch(f"/v2/images/{image_id}", json=add, headers={**PATCH, **SERVICE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "active"
    assert body["size"] == len(first)
    assert body["checksum"] == hashlib.md5(first, usedforsecurity=False).hexdigest()
    assert body["locations"] == [{"url": first_url, "metadata": {"note": "x", "store": "fast"}}]
    add_second = [
        {"op": "add", "path": "/locations/-", "value": {"url": second_url, "metadata": {}}}
    ]
    response = await visible.patch(
        f"/v2/images/{image_id}", json=add_second, headers={**PATCH, **SERVICE}
    )
    assert [loc["url"] for loc in response.json()["locations"]] == [first_url, second_url]
    remove = [{"op": "remove", "path": "/locations/0"}]
    member = await visible.patch(f"/v2/images/{image_id}", json=remove, headers={**PATCH, **MEMBER})
    assert member.status_code == 403
    response = await visible.patch(
        f"/v2/images/{image_id}", json=remove, headers={**PATCH, **ADMIN}
    )
    assert response.status_code == 200
    assert response.json()["locations"] == [{"url": second_url, "metadata": {"store": "cheap"}}]
    assert not (tmp_path / "fast" / "one").exists()
    last = await visible.patch(f"/v2/images/{image_id}", json=remove, headers={**PATCH, **ADMIN})
    assert last.status_code == 403
    assert (await visible.get(f"/v2/images/{image_id}/file", headers=MEMBER)).content == first


async def test_patch_validation_data_and_replace_follow_the_image(
    visible: httpx.AsyncClient, tmp_path: Path
) -> None:
    data = b"one copy"
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    first_url = stored_object(tmp_path, "fast", "one", data)
    second_url = stored_object(tmp_path, "cheap", "two", data)
    image_id = await queued_image(visible)

    async def patch(operations: list[dict[str, Any]]) -> httpx.Response:
        headers = {**PATCH, **SERVICE}
        return await visible.patch(f"/v2/images/{image_id}", json=operations, headers=headers)

    def add(url: str, validation: dict[str, str]) -> list[dict[str, Any]]:
        value = {"url": url, "metadata": {}, "validation_data": validation}
        return [{"op": "add", "path": "/locations/-", "value": value}]

    assert (await patch(add(first_url, {"checksum": md5}))).status_code == 200
    # An active image's checksum must be repeated exactly; a hash it lacks cannot be set now.
    other = await patch(add(second_url, {"checksum": "2" * 32}))
    assert other.status_code == 409
    assert "checksum is already set with a different value" in other.json()["message"]
    late = await patch(add(second_url, {"os_hash_algo": "sha512", "os_hash_value": "ab" * 64}))
    assert late.status_code == 409
    assert "may only be provided when image status is 'queued'" in late.json()["message"]
    assert (await patch(add(second_url, {"checksum": md5}))).status_code == 200

    # Replacing keeps the URLs (metadata may change); dropping or swapping one is refused.
    shown = (await visible.get(f"/v2/images/{image_id}", headers=ADMIN)).json()["locations"]
    shown[0]["metadata"]["date"] = "2015-10-15"
    replaced = await patch([{"op": "replace", "path": "/locations", "value": shown}])
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["locations"][0]["metadata"]["date"] == "2015-10-15"
    for value in ([shown[0]], [shown[0], {"url": f"{second_url}#new", "metadata": {}}]):
        refused = await patch([{"op": "replace", "path": "/locations", "value": value}])
        assert refused.status_code == 400
        assert "Original locations is not empty" in refused.json()["message"]
    after = (await visible.get(f"/v2/images/{image_id}", headers=ADMIN)).json()["locations"]
    assert [loc["url"] for loc in after] == [first_url, second_url]


async def test_location_quota(make_settings: Any, client_for: Any, tmp_path: Path) -> None:
    client = await client_for(
        make(make_settings, tmp_path, show_multiple_locations=True, image_location_quota=1)
    )
    image_id = await queued_image(client)
    urls = [stored_object(tmp_path, "fast", f"o{i}", b"same") for i in range(2)]
    ops = [
        {"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}} for url in urls
    ]
    response = await client.patch(f"/v2/images/{image_id}", json=ops, headers={**PATCH, **ADMIN})
    assert response.status_code == 413
    shown = (await client.get(f"/v2/images/{image_id}", headers=MEMBER)).json()
    assert (shown["status"], shown["locations"]) == ("queued", [])


@pytest.fixture
def web_settings(make_settings: Any, tmp_path: Path, http_server: HttpServer) -> Settings:
    """A file store and an http store; the loopback test server is allow-listed."""
    port = http_server.base.rsplit(":", 1)[1]
    settings: Settings = make_settings(
        auth_strategy="trusted-proxy",
        enabled_backends="fast:file, web:http",
        glance_store={"default_backend": "fast"},
        stores={"fast": {"filesystem_store_datadir": str(tmp_path / "fast")}},
        show_multiple_locations=True,
        import_filtering_opts={"allowed_hosts": "127.0.0.1", "allowed_ports": port},
    )
    return settings


@pytest.fixture
async def web(client_for: Any, web_settings: Settings) -> Any:
    return await client_for(web_settings)


@pytest.fixture
async def web_worker(web_settings: Settings) -> AsyncIterator[WorkerRuntime]:
    context = WorkerRuntime.build(web_settings)
    yield context
    await context.aclose()


async def test_users_add_http_locations_that_pass_the_filter(
    web: httpx.AsyncClient, web_worker: WorkerRuntime, http_server: HttpServer
) -> None:
    data = b"served over http " * 4096
    (http_server.root / "disk.raw").write_bytes(data)
    image_id = await queued_image(web)
    url = f"{http_server.base}/files/disk.raw"
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest()}
    body = {"url": url, "validation_data": validation}
    task = await added(web, web_worker, image_id, body, MEMBER)
    assert task["status"] == "success", task["message"]
    shown = await image(web, image_id)
    assert (shown["status"], shown["size"], shown["stores"]) == ("active", len(data), "web")
    assert shown["locations"] == [{"url": url, "metadata": {"store": "web"}}]
    downloaded = await web.get(f"/v2/images/{image_id}/file", headers=MEMBER)
    assert downloaded.content == data
    ranged = await web.get(f"/v2/images/{image_id}/file", headers={**MEMBER, "Range": "bytes=5-10"})
    assert (ranged.status_code, ranged.content) == (206, data[5:11])
    # The same URL on a second image: one URL may be the location of many images.
    second = await queued_image(web)
    assert (await added(web, web_worker, second, {"url": url}, MEMBER))["status"] == "success"
    assert (await image(web, second))["os_hash_value"] == validation["os_hash_value"]


@pytest.mark.parametrize("delayed", [False, True])
async def test_a_failed_http_location_stays_until_its_image_is_deleted(
    client_for: Any,
    web_settings: Settings,
    http_server: HttpServer,
    delayed: bool,
) -> None:
    """As in Glance (bug 2076648), an http location stays on the image its failed task
    reverts to queued; deleting the image drops it at once, immediate delete or scrubber
    pass, since nothing can delete data in a read-only store."""
    settings = web_settings.model_copy(update={"delayed_delete": delayed, "scrub_time": 0})
    client = await client_for(settings)
    worker = WorkerRuntime.build(settings)
    try:
        (http_server.root / "disk.raw").write_bytes(b"http data")
        image_id = await queued_image(client)
        url = f"{http_server.base}/files/disk.raw"
        wrong = {"os_hash_algo": "sha512", "os_hash_value": "beefdead" * 16}
        task = await added(client, worker, image_id, {"url": url, "validation_data": wrong}, MEMBER)
        assert task["status"] == "failure"
        shown = await image(client, image_id)
        assert (shown["status"], shown["checksum"], shown["os_hash_value"]) == (
            "queued",
            None,
            None,
        )
        assert (shown["stores"], shown["locations"]) == (
            "web",
            [{"url": url, "metadata": {"store": "web"}}],
        )
        assert (await client.delete(f"/v2/images/{image_id}", headers=MEMBER)).status_code == 204
        report = await DeletionService(settings, worker.database, worker.stores).scrub()
        assert (report.removed, report.failed) == ((1, 0) if delayed else (0, 0))
        async with worker.database.read() as session:
            rows = await session.execute(
                sa.select(ImageLocation.status).where(ImageLocation.image_id == image_id)
            )
            assert list(rows.scalars()) == ["deleted"]
            assert (await session.get(Image, image_id)).status == "deleted"  # type: ignore[union-attr]  # the row exists
    finally:
        await worker.aclose()


@pytest.mark.parametrize(
    ("url", "status", "patch_status"),
    [
        ("http://169.254.169.254/latest/meta-data/", 400, 400),
        ("http://2130706433/disk.raw", 400, 400),
        ("http://localhost:1/disk.raw", 400, 400),
        # Not http(s): Glance's 2.17 API says the http store is needed (403); its patch path
        # finds no store for the URL (400, "Invalid location"), as tempest checks with gopher.
        ("ftp://example.com/disk.raw", 403, 400),
        ("file:///etc/passwd", 403, 400),
        ("gopher://info.cern.ch", 403, 400),
    ],
)
async def test_users_cannot_point_at_private_or_local_data(
    web: httpx.AsyncClient, url: str, status: int, patch_status: int
) -> None:
    image_id = await queued_image(web)
    response = await web.post(f"/v2/images/{image_id}/locations", json={"url": url}, headers=MEMBER)
    assert response.status_code == status, response.text
    patched = await web.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}],
        headers={**PATCH, **MEMBER},
    )
    assert patched.status_code == patch_status, patched.text
    shown = (await web.get(f"/v2/images/{image_id}", headers=MEMBER)).json()
    assert (shown["status"], shown["locations"]) == ("queued", [])


OTHER = persona("member,reader", project="project-b")


async def test_locations_are_shown_only_to_who_may_get_them(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    """show_multiple_locations and show_image_direct_url show the data's location only to a
    caller who passes get_image_location (the owner's readers, admins by default)."""
    settings = make(
        make_settings, tmp_path, show_multiple_locations=True, show_image_direct_url=True
    )
    client = await client_for(settings)
    body = {"disk_format": "raw", "container_format": "bare", "visibility": "public"}
    image_id = (await client.post("/v2/images", json=body, headers=ADMIN)).json()["id"]
    uploaded = await client.put(
        f"/v2/images/{image_id}/file", content=b"public data", headers={**OCTET, **ADMIN}
    )
    assert uploaded.status_code == 204
    url = (tmp_path / "fast" / image_id).as_uri()

    mine = (await client.get(f"/v2/images/{image_id}", headers=MEMBER)).json()
    assert mine["locations"] == [{"url": url, "metadata": {"store": "fast"}}]
    assert mine["direct_url"] == url
    for response in (
        await client.get(f"/v2/images/{image_id}", headers=OTHER),
        await client.get("/v2/images", headers=OTHER),
    ):
        body = response.json()
        shown = body["images"][0] if "images" in body else body
        assert shown["id"] == image_id
        assert shown["locations"] == []
        assert "direct_url" not in shown
        assert shown["stores"] == "fast"  # which stores hold it is no secret
    # A policy file may open it to everyone who sees the image.
    policy = tmp_path / "policy.yaml"
    policy.write_text('"get_image_location": "role:reader"\n')
    opened = await client_for(
        make(
            make_settings,
            tmp_path,
            show_multiple_locations=True,
            oslo_policy={"policy_file": str(policy)},
        )
    )
    seen = (await opened.get(f"/v2/images/{image_id}", headers=OTHER)).json()
    assert seen["locations"] == [{"url": url, "metadata": {"store": "fast"}}]


async def test_credentials_in_location_urls_are_never_shown_or_logged(
    web: httpx.AsyncClient,
    web_worker: WorkerRuntime,
    http_server: HttpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(ContextFilter())  # what every handler of the services carries
    data = b"behind a signed url " * 1000
    (http_server.root / "signed.raw").write_bytes(data)
    host = http_server.base.removeprefix("http://")
    secret_url = (
        f"http://alice:hunter2@{host}/files/signed.raw"
        "?versionId=7&X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=f00dcafe"
    )
    shown_url = (
        f"http://***@{host}/files/signed.raw?versionId=7&X-Amz-Credential=***&X-Amz-Signature=***"
    )
    image_id = await queued_image(web)
    task = await added(web, web_worker, image_id, {"url": secret_url}, SERVICE)
    assert task["status"] == "success", task["message"]
    assert task["input"]["loc_url"] == shown_url

    shown = (await web.get(f"/v2/images/{image_id}", headers=MEMBER)).json()
    assert shown["locations"] == [{"url": shown_url, "metadata": {"store": "web"}}]
    fetched = await web.get(f"/v2/images/{image_id}/locations", headers=SERVICE)
    assert fetched.json() == [{"url": shown_url, "metadata": {"store": "web"}}]
    # The list as shown can be sent back: it still names the same location.
    replaced = await web.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/locations", "value": shown["locations"]}],
        headers={**PATCH, **MEMBER},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["locations"] == shown["locations"]
    assert (await web.get(f"/v2/images/{image_id}/file", headers=MEMBER)).content == data
    # A refused URL is quoted without its secrets too.
    other = await queued_image(web)
    refused = await web.post(
        f"/v2/images/{other}/locations",
        json={"url": "http://bob:hunter2@169.254.169.254/latest?sig=f00dcafe"},
        headers=MEMBER,
    )
    assert refused.status_code == 400
    assert refused.json()["message"].endswith("http://***@169.254.169.254/latest?sig=***")
    for secret in ("hunter2", "AKIDEXAMPLE", "f00dcafe"):
        assert secret not in caplog.text
    assert "signed.raw" in caplog.text  # the URLs were logged, redacted
