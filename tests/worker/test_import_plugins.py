"""Import plugins on glance-direct imports: the pipeline run in-process, real qemu-img on
images built here, real gzip and zip data."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from factories import (
    Imported,
    assert_active_with,
    assert_refused,
    qemu_img,
    run_import,
    staged_files,
    start_import,
)
from glimpse.config import ConfigError
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.domain.imports import ImportTaskInput
from glimpse_worker import plugins
from glimpse_worker.pipelines import import_
from glimpse_worker.pipelines.prepare import Prepared
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.pipelines.sources import ImportJob
from glimpse_worker.plugins.image_conversion import Limits, _qemu_img, image_conversion
from glimpse_worker.plugins.image_decompression import image_decompression
from glimpse_worker.plugins.inject_image_metadata import inject_image_metadata
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OWNER
from support import command, environment

MiB = 1024 * 1024


def random_disk(path: Path) -> bytes:
    """A raw disk of 4 MiB: random data with a hole of zeros (qcow2 keeps it unallocated)."""
    data = os.urandom(MiB) + bytes(2 * MiB) + os.urandom(MiB)
    path.write_bytes(data)
    return data


def qcow2_of(raw: Path, qcow2: Path) -> None:
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))


async def downloaded(imported: Imported, headers: dict[str, str] = OWNER) -> bytes:
    response = await imported.client.get(f"/v2/images/{imported.image_id}/file", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


# -- image_conversion ------------------------------------------------------------------------


async def test_conversion_of_qcow2_to_raw(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    raw = tmp_path / "disk.raw"
    random_disk(raw)
    qcow2 = tmp_path / "disk.qcow2"
    qcow2_of(raw, qcow2)
    expected = tmp_path / "expected.raw"
    qemu_img("convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(expected))
    imported = await run_import(
        make_settings, client_for, qcow2.read_bytes(), ["image_conversion"], disk_format="qcow2"
    )
    assert_active_with(imported, expected.read_bytes())
    assert imported.image["disk_format"] == "raw"
    assert imported.image["container_format"] == "bare"
    assert imported.image["virtual_size"] == 4 * MiB
    assert await downloaded(imported) == expected.read_bytes()


@pytest.mark.parametrize("output_format", ["qcow2", "vmdk"])
async def test_conversion_of_raw(
    make_settings: Any, client_for: Any, tmp_path: Path, output_format: str
) -> None:
    data = random_disk(tmp_path / "disk.raw")
    imported = await run_import(
        make_settings,
        client_for,
        data,
        ["image_conversion"],
        image_conversion={"output_format": output_format},
    )
    assert imported.image["status"] == "active", imported.task
    assert imported.image["disk_format"] == output_format
    assert imported.image["virtual_size"] == 4 * MiB
    converted = tmp_path / f"converted.{output_format}"
    converted.write_bytes(await downloaded(imported))
    info = json.loads(qemu_img("info", "--output=json", "-f", output_format, str(converted)))
    assert info["format"] == output_format
    assert info["virtual-size"] == 4 * MiB
    back = tmp_path / "back.raw"
    qemu_img("convert", "-f", output_format, "-O", "raw", str(converted), str(back))
    assert back.read_bytes() == data


async def test_conversion_refuses_a_qcow2_with_a_backing_file(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    base = tmp_path / "base.raw"
    random_disk(base)
    child = tmp_path / "child.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "raw", str(child))
    imported = await run_import(
        make_settings, client_for, child.read_bytes(), ["image_conversion"], disk_format="qcow2"
    )
    assert_refused(imported, "backing file")


async def test_conversion_refuses_a_raw_output_past_the_size_cap(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    sparse = tmp_path / "sparse.qcow2"
    qemu_img("create", "-f", "qcow2", str(sparse), "64M")
    assert sparse.stat().st_size < MiB
    imported = await run_import(
        make_settings,
        client_for,
        sparse.read_bytes(),
        ["image_conversion"],
        disk_format="qcow2",
        image_size_cap=8 * MiB,
    )
    assert_refused(imported, "the raw image would be larger than image_size_cap (8388608 bytes)")


async def test_conversion_refuses_data_that_is_not_what_it_declares(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    random_disk(tmp_path / "disk.raw")
    qcow2 = tmp_path / "disk.qcow2"
    qcow2_of(tmp_path / "disk.raw", qcow2)
    imported = await run_import(
        make_settings,
        client_for,
        qcow2.read_bytes(),
        ["image_conversion"],
        image_conversion={"output_format": "vmdk"},
    )
    assert_refused(imported, "Image format mismatch: declared raw, found qcow2")


async def test_conversion_keeps_an_iso_and_refuses_one_declared_otherwise(
    make_settings: Any, client_for: Any
) -> None:
    iso = bytearray(os.urandom(64 * 1024))
    iso[0x8000:0x8006] = b"\x01CD001"  # an ISO 9660 primary volume descriptor
    data = bytes(iso)
    kept = await run_import(
        make_settings, client_for, data, ["image_conversion"], disk_format="iso"
    )
    assert_active_with(kept, data)
    assert kept.image["disk_format"] == "iso"
    refused = await run_import(make_settings, client_for, data, ["image_conversion"])
    assert_refused(refused, "Image has disallowed configuration")


# -- image_decompression ---------------------------------------------------------------------


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", ["gzip", "zip"])
async def test_decompression(make_settings: Any, client_for: Any, compress: str) -> None:
    data = os.urandom(2 * MiB + 7) + bytes(MiB)
    packed = gzip.compress(data) if compress == "gzip" else zipped(("disk.img", data))
    imported = await run_import(make_settings, client_for, packed, ["image_decompression"])
    assert_active_with(imported, data)
    assert imported.image["virtual_size"] == len(data)
    assert await downloaded(imported) == data


async def test_decompression_stops_a_bomb_at_the_size_cap(
    make_settings: Any, client_for: Any
) -> None:
    bomb = gzip.compress(bytes(64 * MiB))
    assert len(bomb) < MiB
    imported = await run_import(
        make_settings, client_for, bomb, ["image_decompression"], image_size_cap=4 * MiB
    )
    assert_refused(imported, "larger than image_size_cap (4194304 bytes)")


async def test_decompression_refuses_a_zip_of_several_files(
    make_settings: Any, client_for: Any
) -> None:
    archive = zipped(("one.img", b"1" * 1000), ("two.img", b"2" * 1000))
    imported = await run_import(make_settings, client_for, archive, ["image_decompression"])
    assert_refused(imported, "the zip archive must hold exactly one file")


async def test_decompression_leaves_a_compressed_container_alone(
    make_settings: Any, client_for: Any
) -> None:
    packed = gzip.compress(os.urandom(MiB))
    imported = await run_import(
        make_settings,
        client_for,
        packed,
        ["image_decompression"],
        container_format="compressed",
    )
    assert_active_with(imported, packed)
    assert await downloaded(imported) == packed


async def test_decompression_then_conversion(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    raw = tmp_path / "disk.raw"
    data = random_disk(raw)
    qcow2 = tmp_path / "disk.qcow2"
    qcow2_of(raw, qcow2)
    imported = await run_import(
        make_settings,
        client_for,
        gzip.compress(qcow2.read_bytes()),
        ["image_decompression", "image_conversion"],
        disk_format="qcow2",
    )
    assert_active_with(imported, data)
    assert imported.image["disk_format"] == "raw"


# -- inject_image_metadata and no_op ---------------------------------------------------------

INJECT = {"inject_metadata_properties": {"inject": "hw_rng_model:virtio, note:a:b"}}


async def test_injected_properties_for_a_member(make_settings: Any, client_for: Any) -> None:
    data = os.urandom(1000)
    imported = await run_import(
        make_settings, client_for, data, ["inject_image_metadata"], **INJECT
    )
    assert_active_with(imported, data)
    assert imported.image["hw_rng_model"] == "virtio"
    assert imported.image["note"] == "a:b"


async def test_no_injected_properties_for_an_admin(make_settings: Any, client_for: Any) -> None:
    data = os.urandom(1000)
    imported = await run_import(
        make_settings, client_for, data, ["inject_image_metadata"], headers=ADMIN, **INJECT
    )
    assert imported.image["status"] == "active", imported.task
    assert "hw_rng_model" not in imported.image
    assert "note" not in imported.image


async def test_no_op(make_settings: Any, client_for: Any) -> None:
    data = os.urandom(MiB + 1)
    imported = await run_import(make_settings, client_for, data, ["no_op", "no_op"])
    assert_active_with(imported, data)
    assert await downloaded(imported) == data


# -- configuration ---------------------------------------------------------------------------


def test_unknown_plugin_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown plugins \['image_rot13'\]"):
        plugins.load(["no_op", "image_rot13"])
    assert [name for name, _ in plugins.load(["image_conversion", "no_op"])] == [
        "image_conversion",
        "no_op",
    ]


def test_the_worker_does_not_start_with_an_unknown_plugin(tmp_path: Path) -> None:
    config = tmp_path / "glance-api.conf"
    config.write_text("[image_import_opts]\nimage_import_plugins = ['no_op', 'image_rot13']\n")
    done = subprocess.run(
        [command("glimpse-worker"), "--config-file", str(config)],
        env=environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown plugins ['image_rot13']" in done.stderr


def test_plugin_options_in_glance_notation(make_settings: Any) -> None:
    settings = make_settings(
        image_import_opts={"image_import_plugins": "['image_decompression', 'image_conversion']"},
        inject_metadata_properties={"inject": "k1:v1,k2:v2", "ignore_user_roles": "admin,ops"},
    )
    assert settings.image_import_opts.image_import_plugins == [
        "image_decompression",
        "image_conversion",
    ]
    assert settings.inject_metadata_properties.inject == {"k1": "v1", "k2": "v2"}
    assert settings.inject_metadata_properties.ignore_user_roles == ["admin", "ops"]


# -- a retried job runs each plugin again on what it already processed ------------------------


async def job_for(context: WorkerRuntime, image_id: str, task_id: str) -> Any:
    async with context.database.read() as session:
        task = await TaskRepository(session).get(task_id)
        repo = ImageRepository(session)
        image = await repo.get(image_id)
        properties = await repo.properties(image_id)
    assert task is not None
    assert image is not None
    task_input = ImportTaskInput.from_task(task.type, task.input)
    staged = context.stores.staging.location_for(image_id)
    return ImportJob(
        context, task, image, properties, task_input, staged, Progress(context, task_id)
    )


async def test_plugins_run_twice_give_the_same_result(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    raw = tmp_path / "disk.raw"
    data = random_disk(raw)
    qcow2 = tmp_path / "disk.qcow2"
    qcow2_of(raw, qcow2)
    client, settings, image_id, task_id = await start_import(
        make_settings,
        client_for,
        gzip.compress(qcow2.read_bytes()),
        disk_format="qcow2",
        image_import_opts={
            "image_import_plugins": [
                "image_decompression",
                "image_conversion",
                "inject_image_metadata",
            ]
        },
        **INJECT,
    )
    context = WorkerRuntime.build(settings)
    try:
        job = await job_for(context, image_id, task_id)
        results = []
        for _attempt in range(2):
            # What a retried job starts from: the image as declared, the staged file as left.
            prepared = Prepared(job.image.disk_format, job.image.container_format)
            for plugin in (image_decompression, image_conversion, inject_image_metadata):
                await plugin(job, prepared)
            staged = job.staged_path
            assert staged.read_bytes() == data
            assert [p.name for p in staged_files(settings)] == [image_id]
            results.append(prepared)
        assert results[0] == results[1]
        assert results[0].disk_format == "raw"
        assert results[0].virtual_size == len(data)
        assert results[0].properties == {"hw_rng_model": "virtio", "note": "a:b"}
        await import_.run(context, task_id)
    finally:
        await context.aclose()
    image = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert image["status"] == "active"
    assert image["disk_format"] == "raw"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()


# `qemu-img bench` starts a thread per request in flight: more address space than convert.
ROOMY = Limits(address_space=64 * 1024**3, cpu_seconds=600, wall_seconds=600.0)


def qemu_img_children() -> list[int]:
    """Pids of this process's qemu-img children, zombies (exited, not reaped) included."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        parent = text[text.rindex(")") + 2 :].split()[1]
        if name == "qemu-img" and int(parent) == os.getpid():
            found.append(int(stat.parent.name))
    return found


async def test_qemu_img_is_killed_when_the_job_is_cancelled(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    _client, settings, image_id, task_id = await start_import(
        make_settings, client_for, os.urandom(MiB)
    )
    disk = tmp_path / "bench.raw"
    disk.write_bytes(bytes(MiB))
    context = WorkerRuntime.build(settings)
    try:
        job = await job_for(context, image_id, task_id)
        # `qemu-img bench` with a huge request count runs until it is killed.
        running = asyncio.ensure_future(
            _qemu_img(job, "bench", "-c", "2000000000", "-f", "raw", str(disk), limits=ROOMY)
        )
        for _poll in range(2000):
            if qemu_img_children():
                break
            await asyncio.sleep(0.01)
        assert len(qemu_img_children()) == 1
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert qemu_img_children() == []  # killed and reaped
    finally:
        await context.aclose()
