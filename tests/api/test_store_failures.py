"""A store that cannot take a write answers as the error table says (503, or 413 when full),
in Glance's error body, never a bare 500; the image takes data again afterwards."""

from __future__ import annotations

import errno
import os
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse.domain.errors import LimitExceeded, StoreUnavailable
from glimpse.services.store_failures import write_failure
from glimpse.stores import filesystem
from glimpse.stores.base import StoreError, StoreFull
from glimpse_api.errors import status_for

OCTET = {"Content-Type": "application/octet-stream"}


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
    ("error", "domain", "status"),
    [
        (StoreFull("store fast is full"), LimitExceeded, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
        (StoreError("write to store fast failed: Permission denied"), StoreUnavailable, 503),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/x"), StoreUnavailable, 503),
        (OSError(errno.EIO, "Input/output error"), StoreUnavailable, 503),
    ],
)
def test_write_failures_map_to_413_or_503_without_paths(
    error: BaseException, domain: type[Exception], status: int
) -> None:
    failure = write_failure("fast", error)
    assert isinstance(failure, domain)
    assert status_for(failure) == status
    assert "/srv/x" not in failure.message


def test_errors_that_are_not_the_stores_pass_through() -> None:
    assert write_failure("fast", LimitExceeded("too big")) is None
    assert write_failure("fast", ValueError("no")) is None


def _disk_failing_with(code: int) -> Any:
    """The filesystem store's write, failing as a disk would (a full disk: ENOSPC)."""

    def write_all(_fd: int, _data: bytes) -> None:
        raise OSError(code, os.strerror(code))

    return write_all


@pytest.mark.parametrize(
    ("code", "status", "start"),
    [
        (errno.ENOSPC, 413, "Image storage media is full:"),
        (errno.EIO, 503, "Store os_glance_staging_store failed:"),
    ],
)
async def test_stage_into_a_failing_staging_disk(
    client: httpx.AsyncClient,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    status: int,
    start: str,
) -> None:
    image_id = await _image(client)
    monkeypatch.setattr(filesystem, "_write_all", _disk_failing_with(code))
    response = await client.put(f"/v2/images/{image_id}/stage", content=b"x" * 4096, headers=OCTET)
    assert response.status_code == status
    assert response.json()["message"].startswith(start)
    staging = settings.store_datadir("os_glance_staging_store")
    assert str(staging) not in response.json()["message"]
    # Nothing is left in the staging directory, and the image takes data again.
    assert list(staging.iterdir()) == []
    monkeypatch.undo()
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
    retried = await client.put(f"/v2/images/{image_id}/stage", content=b"x" * 4096, headers=OCTET)
    assert retried.status_code == 204
    assert (staging / image_id).read_bytes() == b"x" * 4096
