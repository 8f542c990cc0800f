"""Image data: streamed upload and download, hashes, ranges, caps and failure clean-up."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import OCTET, create, stored_files, upload
from glimpse.config import Settings


async def test_upload_then_download_round_trip(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = await create(client)

    async def chunked() -> Any:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    response = await upload(client, image["id"], chunked())
    assert response.status_code == 204
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert "stores" not in shown  # single built-in store: not multi-store mode
    response = await client.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-md5"] == shown["checksum"]
    assert response.headers["content-type"] == "application/octet-stream"
    assert [path.name for path in stored_files(settings)] == [image["id"]]


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=100-", 100, 1000),
        ("bytes=-24", 976, 1000),
        ("bytes=990-5000", 990, 1000),
    ],
)
async def test_range_requests(
    client: httpx.AsyncClient, header: str, start: int, stop: int
) -> None:
    data = os.urandom(1000)
    image = await create(client)
    assert (await upload(client, image["id"], data)).status_code == 204
    response = await client.get(f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[start:stop]
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/1000"
    assert response.headers["content-length"] == str(stop - start)


async def test_unsatisfiable_range_is_416(client: httpx.AsyncClient) -> None:
    image = await create(client)
    assert (await upload(client, image["id"], b"x" * 100)).status_code == 204
    response = await client.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=100-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */100"


@pytest.mark.parametrize(
    ("header", "status"),
    [("bytes=0-1,2-2", 400), ("bytes=abc", 416), ("bytes=4-2", 416), ("items=0-1", 416)],
)
async def test_bad_ranges(client: httpx.AsyncClient, header: str, status: int) -> None:
    image = await create(client)
    assert (await upload(client, image["id"], b"abcdef")).status_code == 204
    response = await client.get(f"/v2/images/{image['id']}/file", headers={"Range": header})
    assert response.status_code == status


async def test_announced_size_must_match(client: httpx.AsyncClient, settings: Settings) -> None:
    image = await create(client)
    for announced, fragment in (("5", "Size exceeds"), ("50", "Size mismatch")):
        response = await client.put(
            f"/v2/images/{image['id']}/file",
            content=b"0123456789",
            headers={**OCTET, "x-openstack-image-size": announced},
        )
        assert response.status_code == 400
        assert fragment in response.json()["message"]
        assert (await client.get(f"/v2/images/{image['id']}")).json()["status"] == "queued"
        assert stored_files(settings) == []
    bad = await client.put(
        f"/v2/images/{image['id']}/file",
        content=b"x",
        headers={**OCTET, "x-openstack-image-size": "lots"},
    )
    assert bad.status_code == 400
    good = await client.put(
        f"/v2/images/{image['id']}/file",
        content=b"0123456789",
        headers={**OCTET, "x-openstack-image-size": "10"},
    )
    assert good.status_code == 204
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert (shown["size"], shown["virtual_size"]) == (10, 10)


async def test_upload_needs_formats(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/images", json={"name": "bare"})
    image = response.json()
    response = await upload(client, image["id"], b"data")
    assert response.status_code == 400
    assert "disk_format, container_format" in response.json()["message"]
    assert (await client.get(f"/v2/images/{image['id']}")).json()["status"] == "queued"


async def test_errors_follow_the_accept_header(client: httpx.AsyncClient) -> None:
    url = f"/v2/images/{uuid.uuid4()}"
    html = await client.get(url, headers={"Accept": "*/*"})
    assert html.headers["content-type"].startswith("text/html")
    assert "<h1>404 Not Found</h1>" in html.text
    assert "No image found with ID" in html.text
    plain = await client.get(url, headers={"Accept": ""})
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text.startswith("404 Not Found\n\nNo image found with ID")
    as_json = await client.get(url, headers={"Accept": "application/json"})
    assert as_json.json()["title"] == "Not Found"


async def test_image_without_data_downloads_as_204(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await client.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 204
    assert response.content == b""
    missing = await client.get(f"/v2/images/{uuid.uuid4()}/file")
    assert missing.status_code == 404


async def test_second_upload_is_409(client: httpx.AsyncClient) -> None:
    image = await create(client)
    assert (await upload(client, image["id"], b"first")).status_code == 204
    response = await upload(client, image["id"], b"second")
    assert response.status_code == 409
    assert (await client.get(f"/v2/images/{image['id']}/file")).content == b"first"


async def test_size_cap_is_413_and_leaves_nothing(
    make_settings: Any,
    client_for: Any,
) -> None:
    settings = make_settings(image_size_cap=2 * 1024 * 1024)
    client = await client_for(settings)
    image = await create(client)
    response = await upload(client, image["id"], os.urandom(3 * 1024 * 1024))
    assert response.status_code == 413
    assert "image_size_cap" in response.json()["message"]
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert stored_files(settings) == []
    # The image takes a smaller upload afterwards.
    assert (await upload(client, image["id"], b"small")).status_code == 204


async def test_user_storage_quota_is_413(make_settings: Any, client_for: Any) -> None:
    settings = make_settings(user_storage_quota="1MB")
    client = await client_for(settings)
    first = await create(client)
    assert (await upload(client, first["id"], b"a" * 700_000)).status_code == 204
    second = await create(client)
    response = await upload(client, second["id"], b"b" * 400_000)
    assert response.status_code == 413
    assert "quota" in response.json()["message"]
    assert [path.name for path in stored_files(settings)] == [first["id"]]
    assert (await client.get(f"/v2/images/{second['id']}")).json()["status"] == "queued"


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await client.put(
        f"/v2/images/{image['id']}/file", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert (await client.get(f"/v2/images/{image['id']}")).json()["status"] == "queued"


async def test_unknown_store_is_400(client: httpx.AsyncClient) -> None:
    image = await create(client)
    response = await client.put(
        f"/v2/images/{image['id']}/file",
        content=b"x",
        headers={**OCTET, "X-Image-Meta-Store": "nowhere"},
    )
    assert response.status_code == 400
    assert (await client.get(f"/v2/images/{image['id']}")).json()["status"] == "queued"


async def test_delete_removes_the_data(client: httpx.AsyncClient, settings: Settings) -> None:
    image = await create(client)
    assert (await upload(client, image["id"], b"data")).status_code == 204
    assert len(stored_files(settings)) == 1
    assert (await client.delete(f"/v2/images/{image['id']}")).status_code == 204
    assert stored_files(settings) == []
    assert (await client.get(f"/v2/images/{image['id']}/file")).status_code == 404


async def test_client_disconnect_mid_upload_leaves_image_queued(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Drive the ASGI app as uvicorn does when the client goes away mid-body."""
    image = await create(client)
    transport = client._transport  # noqa: SLF001 -- the ASGI app behind the test client
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 2_000_000, "more_body": True},
        {"type": "http.request", "body": b"y" * 2_000_000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # pragma: no cover -- never reached
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/v2/images/{image['id']}/file",
        "raw_path": f"/v2/images/{image['id']}/file".encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/octet-stream"), (b"host", b"glimpse.test")],
        "client": ("127.0.0.1", 1234),
        "server": ("glimpse.test", 80),
    }
    await app(scope, receive, send)
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert (shown["status"], shown["size"]) == ("queued", None)
    assert stored_files(settings) == []
    datadir = settings.store_datadir(settings.default_store)
    assert not datadir.exists() or not any(datadir.glob(".partial-*"))


async def test_stores_attribute_in_multistore_mode(
    make_settings: Any,
    client_for: Any,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        enabled_backends="fast:file, cheap:file",
        glance_store={"default_backend": "fast"},
        stores={
            "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
            "cheap": {"filesystem_store_datadir": str(tmp_path / "cheap")},
        },
    )
    client = await client_for(settings)
    first = await create(client)
    second = await create(client)
    assert (await upload(client, first["id"], b"one")).status_code == 204
    response = await client.put(
        f"/v2/images/{second['id']}/file",
        content=b"two",
        headers={**OCTET, "X-Image-Meta-Store": "cheap"},
    )
    assert response.status_code == 204
    assert (await client.get(f"/v2/images/{first['id']}")).json()["stores"] == "fast"
    assert (await client.get(f"/v2/images/{second['id']}")).json()["stores"] == "cheap"
    assert [p.name for p in (tmp_path / "cheap").iterdir()] == [second["id"]]
    assert (await client.get(f"/v2/images/{second['id']}/file")).content == b"two"


async def test_failed_activation_leaves_no_data(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the database write that activates the image fails."""
    from glimpse.db.repositories.images import ImageRepository  # noqa: PLC0415 -- this test only

    async def broken(*_args: object, **_kwargs: object) -> None:
        msg = "database went away"
        raise RuntimeError(msg)

    image = await create(client)
    monkeypatch.setattr(ImageRepository, "add_location", broken)
    # The test transport re-raises what the app raised (a real server answers 500).
    with pytest.raises(RuntimeError, match="database went away"):
        await upload(client, image["id"], b"data" * 1000)
    monkeypatch.undo()
    shown = (await client.get(f"/v2/images/{image['id']}")).json()
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert stored_files(settings) == []
