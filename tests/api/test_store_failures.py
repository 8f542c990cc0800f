"""A store that cannot take a write answers as the error table says (503, or 413 when full),
in Glance's error body, never a bare 500; the image takes data again afterwards."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse.domain.errors import LimitExceeded, StoreUnavailable
from glimpse.stores import filesystem
from glimpse.stores.base import (
    Capability,
    ObjectNotFound,
    ResolvedRange,
    StoredObject,
    StoreError,
    StoreFull,
)
from glimpse.stores.checked import CheckedStore, failure_for
from glimpse.stores.filesystem import FilesystemStore
from glimpse_api.errors import status_for

OCTET = {"Content-Type": "application/octet-stream"}
STAGING = "os_glance_staging_store"


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A data directory that cannot exist: its parent is a regular file (root or not)."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    return blocker / "data"


async def _image(client: httpx.AsyncClient) -> str:
    created = await client.post(
        "/v2/images", json={"name": "s", "disk_format": "raw", "container_format": "bare"}
    )
    assert created.status_code == 201
    image_id: str = created.json()["id"]
    return image_id


async def test_stage_into_an_unwritable_staging_store_is_503(
    make_settings: Any, client_for: Any, tmp_path: Path, blocked: Path
) -> None:
    settings = make_settings(
        stores={
            "os_glance_staging_store": {"filesystem_store_datadir": str(blocked)},
            "os_glance_tasks_store": {"filesystem_store_datadir": str(tmp_path / "tasks")},
        }
    )
    client = await client_for(settings)
    image_id = await _image(client)
    response = await client.put(f"/v2/images/{image_id}/stage", content=b"x" * 4096, headers=OCTET)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "503 Service Unavailable"
    assert body["message"].startswith("Store os_glance_staging_store failed:")
    assert str(tmp_path) not in body["message"]
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "queued"
    assert image["size"] is None


async def test_upload_into_an_unwritable_store_is_503(
    make_settings: Any, client_for: Any, tmp_path: Path, blocked: Path
) -> None:
    settings = make_settings(glance_store={"filesystem_store_datadir": str(blocked)})
    client = await client_for(settings)
    image_id = await _image(client)
    response = await client.put(f"/v2/images/{image_id}/file", content=b"x" * 4096, headers=OCTET)
    assert response.status_code == 503
    assert response.json()["message"].startswith("Store file failed:")
    assert str(tmp_path) not in response.json()["message"]
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"


@pytest.mark.parametrize(
    ("error", "domain", "status", "message"),
    [
        (StoreFull("store fast is full"), LimitExceeded, 413, "Image storage media is full:"),
        (StoreError("write to store fast failed: Permission denied"), StoreUnavailable, 503, ""),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/x"), StoreUnavailable, 503, ""),
        (OSError(errno.EIO, "Input/output error"), StoreUnavailable, 503, ""),
    ],
)
async def test_write_failures_map_to_413_or_503_without_paths(
    error: Exception, domain: type[Exception], status: int, message: str
) -> None:
    store = CheckedStore(FailingDriver(error))
    with pytest.raises(StoreError) as raised:
        await store.put("image", _chunks(b"x"))
    assert raised.value.store == "fast"
    failure = failure_for(raised.value)
    assert isinstance(failure, domain)
    assert status_for(failure) == status
    assert failure.message.startswith(message or "Store fast failed: ")
    assert "/srv/x" not in failure.message


async def test_errors_of_the_data_are_not_the_stores(tmp_path: Path) -> None:
    store = CheckedStore(FilesystemStore("fast", tmp_path))

    async def source_fails(error: Exception) -> AsyncIterator[bytes]:
        yield b"x"
        raise error

    too_big = LimitExceeded("too big")
    with pytest.raises(LimitExceeded) as limited:
        await store.put("image", source_fails(too_big))
    assert limited.value is too_big
    # Another store's read failing while its data is copied here is that store's business.
    with pytest.raises(ObjectNotFound) as missing:
        await store.put("image", source_fails(ObjectNotFound("file:///srv/x")))
    assert missing.value.store is None
    assert failure_for(missing.value).message == "The image store is unavailable."
    assert _names(tmp_path) == []


class FailingDriver:
    """A driver whose every write fails with `error` (as a disk or a network would)."""

    name = "fast"
    capabilities = Capability.READ | Capability.WRITE

    def __init__(self, error: Exception) -> None:
        self.error = error

    def location_for(self, key: str) -> str:
        return f"fail://{key}"

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:  # noqa: ARG002 -- fails first
        raise self.error

    def get(
        self,
        location: str,
        byte_range: ResolvedRange | None = None,  # noqa: ARG002 -- the protocol's
    ) -> AsyncIterator[bytes]:
        raise ObjectNotFound(location)

    async def delete(self, location: str) -> None:
        raise ObjectNotFound(location)

    async def size(self, location: str) -> int:
        raise ObjectNotFound(location)

    async def aclose(self) -> None:
        return None


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _disk_failing_with(code: int) -> Any:
    """The filesystem store's write, failing as a disk would (a full disk: ENOSPC)."""

    def write_all(_fd: int, _data: bytes) -> None:
        raise OSError(code, os.strerror(code))

    return write_all


@pytest.mark.parametrize(
    ("case", "target"),
    [
        ((errno.ENOSPC, 413, "Image storage media is full:"), ("stage", STAGING)),
        ((errno.EIO, 503, f"Store {STAGING} failed:"), ("stage", STAGING)),
        ((errno.ENOSPC, 413, "Image storage media is full:"), ("file", "file")),
        ((errno.EIO, 503, "Store file failed:"), ("file", "file")),
    ],
)
async def test_a_failing_disk_answers_the_same_for_staging_and_upload(
    client: httpx.AsyncClient,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[int, int, str],
    target: tuple[str, str],
) -> None:
    (code, status, start), (route, store) = case, target
    image_id = await _image(client)
    monkeypatch.setattr(filesystem, "_write_all", _disk_failing_with(code))
    url = f"/v2/images/{image_id}/{route}"
    response = await client.put(url, content=b"x" * 4096, headers=OCTET)
    assert response.status_code == status
    assert response.json()["message"].startswith(start)
    datadir = settings.store_datadir(store)
    assert str(datadir) not in response.json()["message"]
    # Nothing is left in the store's directory, and the image takes data again.
    assert _names(datadir) == []
    monkeypatch.undo()
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
    retried = await client.put(url, content=b"x" * 4096, headers=OCTET)
    assert retried.status_code == 204
    assert (datadir / image_id).read_bytes() == b"x" * 4096
