"""Format inspection of uploads (PUT /file) and glance-direct imports, on real disk images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import disk_images
from disk_images import GOOD, HOSTILE, MiB
from factories import GLANCE_DIRECT, image_tasks, staged_files, stored_files, upload
from glimpse.config import Settings
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import new_image

OCTET = {"Content-Type": "application/octet-stream"}


async def image_for(client: httpx.AsyncClient, disk_format: str, container: str = "bare") -> str:
    return await new_image(client, {}, disk_format=disk_format, container_format=container)


async def shown(client: httpx.AsyncClient, image_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v2/images/{image_id}")).json()
    return body


async def assert_refused(
    client: httpx.AsyncClient,
    settings: Settings,
    image_id: str,
    response: httpx.Response,
    kept: tuple[str, ...] = (),
) -> str:
    """The upload was refused with 415 and left nothing behind (the store holds only the
    images in `kept`); returns the reason."""
    assert response.status_code == 415, response.text
    image = await shown(client, image_id)
    assert image["status"] == "queued"
    assert (image["size"], image["virtual_size"], image["checksum"]) == (None, None, None)
    assert [path.name for path in stored_files(settings)] == list(kept)
    message: str = response.json()["message"]
    return message


@pytest.mark.parametrize("name", GOOD)
async def test_upload_of_a_matching_image_records_its_virtual_size(
    name: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    build, disk_format, _qemu_format = GOOD[name]
    path = build(tmp_path)
    image_id = await image_for(client, disk_format)
    assert (await upload(client, image_id, path.read_bytes())).status_code == 204
    image = await shown(client, image_id)
    assert image["status"] == "active"
    assert (image["size"], image["virtual_size"]) == (path.stat().st_size, MiB)


@pytest.mark.parametrize(
    ("build", "disk_format"), [(disk_images.iso, "iso"), (disk_images.raw, "raw")]
)
async def test_upload_of_hand_built_formats(
    build: Callable[[Path], Path], disk_format: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = build(tmp_path)
    image_id = await image_for(client, disk_format)
    assert (await upload(client, image_id, path.read_bytes())).status_code == 204
    assert (await shown(client, image_id))["virtual_size"] == MiB


@pytest.mark.parametrize("build", [disk_images.gpt, disk_images.luks])
async def test_gpt_and_luks_are_uploaded_as_raw(
    build: Callable[[Path], Path], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Neither is in the default disk_formats: such disks are declared raw, at their byte size.
    data = build(tmp_path).read_bytes()
    image_id = await image_for(client, "raw")
    assert (await upload(client, image_id, data)).status_code == 204
    assert (await shown(client, image_id))["virtual_size"] == len(data)


async def test_a_raw_disk_with_an_invalid_protective_mbr_is_refused(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    data = disk_images.gpt(tmp_path, extra_partition=True).read_bytes()
    image_id = await image_for(client, "raw")
    message = await assert_refused(client, settings, image_id, await upload(client, image_id, data))
    assert message == (
        "Image failed safety checks (gpt): mbr: GPT MBR defines invalid extra partitions"
    )


async def test_gpt_mbr_checks_made_nonfatal(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = make_settings(image_format={"gpt_safety_checks_nonfatal": "mbr"})
    client = await client_for(settings)
    data = disk_images.gpt(tmp_path, extra_partition=True).read_bytes()
    image_id = await image_for(client, "raw")
    assert (await upload(client, image_id, data)).status_code == 204
    assert (await shown(client, image_id))["virtual_size"] == len(data)


@pytest.mark.parametrize("name", HOSTILE)
async def test_upload_of_an_unsafe_image_is_refused_and_leaves_nothing(
    name: str, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    build, disk_format, reason = HOSTILE[name]
    image_id = await image_for(client, disk_format)
    response = await upload(client, image_id, build(tmp_path).read_bytes())
    message = await assert_refused(client, settings, image_id, response)
    assert message.startswith("Image failed safety checks")
    assert reason in message
    # Queued again: good data is taken afterwards.
    good = disk_images.qcow2(tmp_path)
    image_id = await image_for(client, "qcow2")
    assert (await upload(client, image_id, good.read_bytes())).status_code == 204


async def test_an_unsafe_image_declared_raw_is_refused(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    image_id = await image_for(client, "raw")
    response = await upload(
        client, image_id, disk_images.qcow2_with_backing_file(tmp_path).read_bytes()
    )
    assert "backing_file" in await assert_refused(client, settings, image_id, response)


async def test_upload_not_matching_disk_format_is_refused(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    image_id = await image_for(client, "vmdk")
    response = await upload(client, image_id, disk_images.qcow2(tmp_path).read_bytes())
    message = await assert_refused(client, settings, image_id, response)
    assert message == "Image disk_format vmdk does not match stream data qcow2"
    # The same image takes matching data afterwards.
    sparse = disk_images.vmdk_sparse(tmp_path).read_bytes()
    assert (await upload(client, image_id, sparse)).status_code == 204
    assert (await shown(client, image_id))["virtual_size"] == MiB


async def test_a_mismatch_is_accepted_when_matching_is_not_required(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = make_settings(image_format={"require_image_format_match": False})
    client = await client_for(settings)
    data = disk_images.qcow2(tmp_path).read_bytes()
    image_id = await image_for(client, "vmdk")
    assert (await upload(client, image_id, data)).status_code == 204
    image = await shown(client, image_id)
    assert (image["status"], image["size"], image["virtual_size"]) == ("active", len(data), None)
    assert [p.name for p in stored_files(settings)] == [image_id]
    # Unsafe data stays refused.
    accepted = image_id
    image_id = await image_for(client, "vmdk")
    hostile = disk_images.qcow2_with_data_file(tmp_path).read_bytes()
    response = await upload(client, image_id, hostile)
    message = await assert_refused(client, settings, image_id, response, kept=(accepted,))
    assert "data_file" in message


async def test_raw_takes_any_safe_content_and_its_virtual_size_is_its_size(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    data = disk_images.vdi(tmp_path).read_bytes()
    image_id = await image_for(client, "raw")
    assert (await upload(client, image_id, data)).status_code == 204
    assert (await shown(client, image_id))["virtual_size"] == len(data)


async def test_what_glance_does_not_inspect(client: httpx.AsyncClient, tmp_path: Path) -> None:
    # Formats no inspector knows take unrecognised content; non-bare containers are not read.
    kernel = await image_for(client, "aki", "aki")
    assert (await upload(client, kernel, b"\x7fELF kernel" * 100)).status_code == 204
    machine = await image_for(client, "ami")
    assert (await upload(client, machine, b"machine image" * 100)).status_code == 204
    wrapped = await image_for(client, "qcow2", "ova")
    assert (
        await upload(client, wrapped, disk_images.raw(tmp_path).read_bytes())
    ).status_code == 204
    for image_id in (kernel, machine, wrapped):
        image = await shown(client, image_id)
        assert (image["status"], image["virtual_size"]) == ("active", None)


async def test_two_formats_in_one_upload_are_refused(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    image_id = await image_for(client, "qcow2")
    response = await upload(
        client, image_id, disk_images.qcow2_hiding_an_iso(tmp_path).read_bytes()
    )
    message = await assert_refused(client, settings, image_id, response)
    assert message == "Multiple formats detected: iso,qcow2"


async def test_a_refused_upload_does_not_count_against_the_quota(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    hostile = disk_images.qcow2_with_backing_file(tmp_path).read_bytes()
    good = disk_images.qcow2(tmp_path).read_bytes()
    settings = make_settings(user_storage_quota=str(len(good) + 1024))
    client = await client_for(settings)
    refused = await image_for(client, "qcow2")
    await assert_refused(client, settings, refused, await upload(client, refused, hostile))
    image_id = await image_for(client, "qcow2")
    assert (await upload(client, image_id, good)).status_code == 204


# -- glance-direct imports --------------------------------------------------------------


async def stage_and_import(
    client: httpx.AsyncClient, settings: Settings, disk_format: str, data: bytes
) -> tuple[str, dict[str, Any]]:
    image_id = await image_for(client, disk_format)
    staged = await client.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
    assert staged.status_code == 204, staged.text
    imported = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    assert imported.status_code == 202, imported.text
    [task] = await image_tasks(client, image_id)
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    [done] = await image_tasks(client, image_id)
    return image_id, done


async def test_import_of_an_unsafe_image_fails_its_task(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    data = disk_images.qcow2_with_backing_file(tmp_path).read_bytes()
    image_id, task = await stage_and_import(client, settings, "qcow2", data)
    assert task["status"] == "failure"
    assert task["message"] == (
        "Image failed safety checks (qcow2): backing_file: Image has a backing file"
    )
    image = await shown(client, image_id)
    assert (image["status"], image["size"], image["virtual_size"]) == ("queued", None, None)
    assert stored_files(settings) == []
    assert staged_files(settings) == []


async def test_import_not_matching_disk_format_fails_its_task(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    data = disk_images.vhdx(tmp_path).read_bytes()
    image_id, task = await stage_and_import(client, settings, "qcow2", data)
    assert task["status"] == "failure"
    assert task["message"] == "Image disk_format qcow2 does not match stream data vhdx"
    assert (await shown(client, image_id))["status"] == "queued"
    assert stored_files(settings) == []


async def test_import_records_the_virtual_size(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    data = disk_images.vmdk_stream(tmp_path).read_bytes()
    image_id, task = await stage_and_import(client, settings, "vmdk", data)
    assert task["status"] == "success", task["message"]
    image = await shown(client, image_id)
    assert (image["status"], image["size"], image["virtual_size"]) == ("active", len(data), MiB)
    assert (await client.get(f"/v2/images/{image_id}/file")).content == data
