"""The image_conversion import plugin in a real glimpse-worker process: a qcow2 image
imported through a real glimpse-api is stored as raw."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from compat_helpers import wait_until_active, worker_and_server

pytestmark = pytest.mark.compat

MiB = 1024 * 1024


def test_a_worker_converts_qcow2_to_raw(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(MiB) + bytes(3 * MiB) + os.urandom(MiB))
    qcow2 = tmp_path / "disk.qcow2"
    expected = tmp_path / "expected.raw"
    for source, target, fmt in ((raw, qcow2, "qcow2"), (qcow2, expected, "raw")):
        source_fmt = "raw" if fmt == "qcow2" else "qcow2"
        subprocess.run(
            ["qemu-img", "convert", "-f", source_fmt, "-O", fmt, str(source), str(target)],
            check=True,
        )
    plugins = {"GLIMPSE_IMAGE_IMPORT_OPTS__IMAGE_IMPORT_PLUGINS": "image_conversion"}
    with (
        worker_and_server(tmp_path, "filesystem://", plugins) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        body = {"name": "live-qcow2", "disk_format": "qcow2", "container_format": "bare"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        staged = client.put(
            f"/v2/images/{image_id}/stage",
            content=qcow2.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert staged.status_code == 204
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202
        image = wait_until_active(client, image_id, tmp_path)
        assert image["disk_format"] == "raw"
        assert image["virtual_size"] == 5 * MiB
        assert image["size"] == expected.stat().st_size
        assert client.get(f"/v2/images/{image_id}/file").content == expected.read_bytes()
    worker_log = (tmp_path / "glimpse-worker.log").read_text(errors="replace")
    assert "running plugin image_conversion" in worker_log
    assert list((tmp_path / "data" / "staging").iterdir()) == []
