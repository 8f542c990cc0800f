"""copy-image end to end: a real glimpse-api and a real glimpse-worker process, two file
stores, the embedded filesystem:// broker."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from compat_helpers import BIN_DIR, free_port, running_server, server_env

from support import terminate

pytestmark = pytest.mark.compat

DONE_WITHIN = 120.0  # seconds before the poll gives up (not an assertion on speed)


def test_copy_image_through_a_worker(tmp_path: Path) -> None:
    env = server_env(tmp_path, free_port())
    env.update(
        GLIMPSE_CELERY__BROKER_URL="filesystem://",
        GLIMPSE_CELERY__WORKER_CONCURRENCY="1",
        GLIMPSE_ENABLED_BACKENDS="a:file,b:file",
        GLIMPSE_GLANCE_STORE__DEFAULT_BACKEND="a",
        GLIMPSE_STORES__A__FILESYSTEM_STORE_DATADIR=str(tmp_path / "a"),
        GLIMPSE_STORES__B__FILESYSTEM_STORE_DATADIR=str(tmp_path / "b"),
    )
    data = os.urandom(4 * 1024 * 1024 + 21)
    with running_server(tmp_path, env) as server:
        worker_log = tmp_path / "glimpse-worker.log"
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [str(BIN_DIR / "glimpse-worker"), "--loglevel=INFO"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                body = {"name": "copied", "disk_format": "raw", "container_format": "bare"}
                image_id = client.post("/v2/images", json=body).json()["id"]
                uploaded = client.put(
                    f"/v2/images/{image_id}/file",
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert uploaded.status_code == 204
                before = client.get(f"/v2/images/{image_id}").json()
                started = client.post(
                    f"/v2/images/{image_id}/import",
                    json={"method": {"name": "copy-image"}, "all_stores": True},
                )
                assert started.status_code == 202, started.text
                deadline = time.monotonic() + DONE_WITHIN
                while True:
                    image = client.get(f"/v2/images/{image_id}").json()
                    if "os_glance_import_task" not in image or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                log_text = worker_log.read_text(errors="replace")
                assert image["status"] == "active", log_text
                assert sorted(image["stores"].split(",")) == ["a", "b"], f"{image}\n{log_text}"
                for field in ("size", "checksum", "os_hash_value"):
                    assert image[field] == before[field]
                [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
                assert task["status"] == "success"
                copied = client.get(f"/v2/images/{image_id}/file?prefer=b").content
                assert hashlib.sha512(copied).hexdigest() == before["os_hash_value"]
        finally:
            terminate(worker)
    assert (tmp_path / "b" / image_id).read_bytes() == data
    assert list((tmp_path / "data" / "staging").iterdir()) == []
