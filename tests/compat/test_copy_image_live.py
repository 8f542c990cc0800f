"""copy-image end to end: a real glimpse-api and a real glimpse-worker process, four file
stores, the embedded filesystem:// broker; one copy asked for by the glance CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from compat_helpers import worker_and_server

pytestmark = pytest.mark.compat

DONE_WITHIN = 120.0  # seconds before the poll gives up (not an assertion on speed)


def test_copy_image_through_a_worker(tmp_path: Path) -> None:
    stores = {
        "GLIMPSE_ENABLED_BACKENDS": "a:file,b:file,c:file,d:file",
        "GLIMPSE_GLANCE_STORE__DEFAULT_BACKEND": "a",
        "GLIMPSE_STORES__A__FILESYSTEM_STORE_DATADIR": str(tmp_path / "a"),
        "GLIMPSE_STORES__B__FILESYSTEM_STORE_DATADIR": str(tmp_path / "b"),
        "GLIMPSE_STORES__C__FILESYSTEM_STORE_DATADIR": str(tmp_path / "c"),
        "GLIMPSE_STORES__D__FILESYSTEM_STORE_DATADIR": str(tmp_path / "d"),
    }
    data = os.urandom(4 * 1024 * 1024 + 21)
    worker_log = tmp_path / "glimpse-worker.log"
    with (
        worker_and_server(tmp_path, "filesystem://", stores) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        body = {"name": "copied", "disk_format": "raw", "container_format": "bare"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        uploaded = client.put(
            f"/v2/images/{image_id}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 204
        before = client.get(f"/v2/images/{image_id}").json()
        copy_with_glance_cli(server.url, image_id, "b")
        image = wait_for_copy(client, image_id, worker_log)
        assert sorted(image["stores"].split(",")) == ["a", "b"]
        # all_stores: a and b hold it already; c and d are written side by side.
        started = client.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "copy-image"}, "all_stores": True},
        )
        assert started.status_code == 202, started.text
        image = wait_for_copy(client, image_id, worker_log)
        assert sorted(image["stores"].split(",")) == ["a", "b", "c", "d"]
        for field in ("size", "checksum", "os_hash_value"):
            assert image[field] == before[field]
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert [task["status"] for task in tasks] == ["success", "success"]
        assert [task["input"]["backend"] for task in tasks] == [["c", "d"], ["b"]]
        for store in ("b", "c", "d"):
            copied = client.get(f"/v2/images/{image_id}/file?prefer={store}").content
            assert hashlib.sha512(copied).hexdigest() == before["os_hash_value"]
    assert (tmp_path / "b" / image_id).read_bytes() == data
    assert (tmp_path / "c" / image_id).read_bytes() == data
    assert (tmp_path / "d" / image_id).read_bytes() == data
    assert list((tmp_path / "data" / "staging").iterdir()) == []


def copy_with_glance_cli(url: str, image_id: str, store: str) -> None:
    glance = str(Path(sys.executable).parent / "glance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    command = [glance, "--os-image-url", url, "--os-auth-token", "t", "image-import"]
    command += ["--import-method", "copy-image", "--stores", store, image_id]
    done = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def wait_for_copy(client: httpx.Client, image_id: str, worker_log: Path) -> dict[str, object]:
    """The image once its import lock is released (the copy finished, or failed)."""
    deadline = time.monotonic() + DONE_WITHIN
    while True:
        image: dict[str, object] = client.get(f"/v2/images/{image_id}").json()
        if "os_glance_import_task" not in image or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    log_text = worker_log.read_text(errors="replace")
    assert image["status"] == "active", log_text
    # Glance leaves both bookkeeping properties as "" once an import ends; a name means it failed.
    assert image.get("os_glance_failed_import", "") == "", f"{image}\n{log_text}"
    return image
