"""Import, glance-direct, end to end: a real glimpse-api and a real glimpse-worker process,
on the Redis broker and on the embedded filesystem:// broker, and the glance CLI's
image-create-via-import."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from compat_helpers import (
    CompatServer,
    wait_until_active,
    worker_and_server,
)

from store_servers import HttpServer

pytestmark = pytest.mark.compat


def stage_and_import(server: CompatServer, workdir: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        created = client.post(
            "/v2/images", json={"name": "live", "disk_format": "raw", "container_format": "bare"}
        )
        assert created.status_code == 201
        image_id = created.json()["id"]
        staged = client.put(
            f"/v2/images/{image_id}/stage",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert staged.status_code == 204
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202
        request_id = started.headers["X-Openstack-Request-Id"]
        image = wait_until_active(client, image_id, workdir)
        assert image["size"] == len(data)
        assert client.get(f"/v2/images/{image_id}/file").content == data
        [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert task["status"] == "success"
    assert list((workdir / "data" / "staging").iterdir()) == []
    # The job's lines carry the accepting request's id, its user and project (noauth: the
    # admin of project "glimpse"), as the API's own lines do.
    worker_log = (workdir / "glimpse-worker.log").read_text(errors="replace")
    [done_line] = [line for line in worker_log.splitlines() if f"image {image_id} active" in line]
    assert f"[{request_id} " in done_line
    assert done_line.split("]", 1)[0].endswith(" glimpse"), done_line


def test_import_through_a_worker_on_redis(redis_db: str, tmp_path: Path) -> None:
    with worker_and_server(tmp_path, redis_db) as server:
        stage_and_import(server, tmp_path)


def test_import_through_a_worker_on_the_embedded_broker(tmp_path: Path) -> None:
    with worker_and_server(tmp_path, "filesystem://") as server:
        stage_and_import(server, tmp_path)


def test_glance_cli_image_create_via_import(tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 11)
    image_file = tmp_path / "cirros.raw"
    image_file.write_bytes(data)
    glance = str(Path(sys.executable).parent / "glance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    # glanceclient treats a stdin that is not a terminal as image data and then refuses
    # --file; a pseudo-terminal is what an operator's shell gives it.
    controller, terminal = pty.openpty()
    with worker_and_server(tmp_path, "filesystem://") as server:
        common = [glance, "--os-image-url", server.url, "--os-auth-token", "t"]
        try:
            created = subprocess.run(
                [
                    *common,
                    "image-create-via-import",
                    "--import-method",
                    "glance-direct",
                    "--disk-format",
                    "raw",
                    "--container-format",
                    "bare",
                    "--name",
                    "via-import",
                    "--file",
                    str(image_file),
                ],
                env=env,
                stdin=terminal,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(terminal)
            os.close(controller)
        assert created.returncode == 0, created.stderr
        [image_id] = [
            line.split("|")[2].strip()
            for line in created.stdout.splitlines()
            if line.startswith("| id ")
        ]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_until_active(client, image_id, tmp_path)
        out = tmp_path / "out.raw"
        downloaded = subprocess.run(
            [*common, "image-download", "--file", str(out), image_id],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert downloaded.returncode == 0, downloaded.stderr
        assert out.read_bytes() == data


def test_glance_cli_web_download(tmp_path: Path, http_server: HttpServer) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (http_server.root / "cirros.raw").write_bytes(data)
    port = str(urlsplit(http_server.base).port)
    uri = f"http://localhost:{port}/files/cirros.raw"
    # The loopback test server is allowed by name and port; nothing else on loopback is.
    allow = {
        "GLIMPSE_IMPORT_FILTERING_OPTS__ALLOWED_HOSTS": "localhost",
        "GLIMPSE_IMPORT_FILTERING_OPTS__ALLOWED_PORTS": port,
    }
    glance = str(Path(sys.executable).parent / "glance")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    controller, terminal = pty.openpty()  # as above: no image data on stdin
    with worker_and_server(tmp_path, "filesystem://", allow) as server:
        try:
            created = subprocess.run(
                [
                    *(glance, "--os-image-url", server.url, "--os-auth-token", "t"),
                    *("image-create-via-import", "--import-method", "web-download"),
                    *("--uri", uri, "--disk-format", "raw", "--container-format", "bare"),
                    *("--name", "from-the-web"),
                ],
                env=env,
                stdin=terminal,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(terminal)
            os.close(controller)
        assert created.returncode == 0, created.stderr
        [image_id] = [
            line.split("|")[2].strip()
            for line in created.stdout.splitlines()
            if line.startswith("| id ")
        ]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            image = wait_until_active(client, image_id, tmp_path)
            assert image["size"] == len(data)
            assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
            assert client.get(f"/v2/images/{image_id}/file").content == data
            [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
            assert task["status"] == "success"
            assert task["input"]["import_req"]["method"] == {"name": "web-download", "uri": uri}
    assert list((tmp_path / "data" / "staging").iterdir()) == []
