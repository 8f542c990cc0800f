"""Every import method and its refusals through a real glimpse-worker process, on PostgreSQL and
Redis: web-download from a loopback server, copy-image to two stores (one of them S3),
all_stores_must_succeed false and true with the S3 store down, hostile disk images, and
requests that try to reach private addresses."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import disk_images
from relay import Relay, relay_to
from store_servers import HttpServer, MotoServer, s3_client
from topology import (
    ImageData,
    Topology,
    create_and_stage,
    image_when_settled,
    random_image,
    topology,
    wait_for,
)

MiB = 1024 * 1024
BUCKET = "glimpse-live-imports"
METADATA_SERVICE = "http://169.254.169.254/latest/meta-data/"


def live_conf(workdir: Path, database_url: str, broker_url: str, s3: Relay, web: str) -> list[str]:
    return [
        "[DEFAULT]",
        "enabled_backends = fast:file, warm:file, cold:s3",
        "[glance_store]",
        "default_backend = fast",
        "[fast]",
        f"filesystem_store_datadir = {workdir / 'fast'}",
        "[warm]",
        f"filesystem_store_datadir = {workdir / 'warm'}",
        "[cold]",
        f"s3_store_host = http://{s3.address}",
        "s3_store_access_key = live-access",
        "s3_store_secret_key = live-secret",
        f"s3_store_bucket = {BUCKET}",
        "s3_store_create_bucket_on_put = true",
        "s3_store_bucket_url_format = path",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {workdir / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {workdir / 'tasks'}",
        "[import_filtering_opts]",
        "allowed_hosts = localhost",  # the loopback web server, by name; nothing else local
        f"allowed_ports = {urlsplit(web).port}",
        "[database]",
        f"connection = {database_url}",
        "[celery]",
        f"broker_url = {broker_url}",
        "worker_concurrency = 1",
    ]


class Importer:
    """Starts imports on the live API and waits for the worker to finish them."""

    def __init__(self, client: httpx.Client, topo: Topology) -> None:
        self.client = client
        self.topo = topo

    def start(self, image_id: str, **body: Any) -> None:
        started = self.client.post(f"/v2/images/{image_id}/import", json=body)
        assert started.status_code == 202, started.text

    def finished_task(self, image_id: str, count: int) -> dict[str, Any]:
        """The image's newest task, once `count` tasks of the image have finished."""

        def finished() -> dict[str, Any] | None:
            tasks = self.client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
            done = [t for t in tasks if t["status"] in {"success", "failure"}]
            return max(done, key=lambda t: t["created_at"]) if len(done) == count else None

        try:
            return wait_for(f"task {count} of {image_id}", finished)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.topo.logs()}") from None

    def image(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self.client.get(f"/v2/images/{image_id}").json()
        return image

    def new_image(self, disk_format: str = "raw") -> str:
        body = {"disk_format": disk_format, "container_format": "bare", "name": "live"}
        created = self.client.post("/v2/images", json=body)
        assert created.status_code == 201, created.text
        image_id: str = created.json()["id"]
        return image_id

    def stage_file(self, path: Path, disk_format: str) -> str:
        image_id = self.new_image(disk_format)
        staged = self.client.put(
            f"/v2/images/{image_id}/stage",
            content=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert staged.status_code == 204, staged.text
        return image_id


def s3_keys(moto: MotoServer) -> list[str]:
    client = s3_client(moto, "live-access", "live-secret")
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(o["Key"] for o in objects)


def files_of(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_import_methods_through_a_live_worker(
    tmp_path: Path,
    database_url: str,
    redis_db: str,
    moto_server: MotoServer,
    http_server: HttpServer,
) -> None:
    served = random_image(http_server.root / "disk.raw", 3 * MiB + 9)
    web = f"http://localhost:{urlsplit(http_server.base).port}"
    host, port = moto_server.host.split(":")
    with relay_to(host, int(port)) as s3:
        conf = live_conf(tmp_path, database_url, redis_db, s3, web)
        with (
            topology(tmp_path, conf) as topo,
            httpx.Client(base_url=topo.url, timeout=60) as client,
        ):
            topo.start_api()
            topo.start_worker()
            imports = Importer(client, topo)

            # web-download, into the default store.
            downloaded = imports.new_image()
            imports.start(
                downloaded, method={"name": "web-download", "uri": f"{web}/files/disk.raw"}
            )
            assert imports.finished_task(downloaded, 1)["status"] == "success"
            image = imports.image(downloaded)
            assert (image["status"], image["stores"]) == ("active", "fast")
            assert (image["size"], image["os_hash_value"]) == (served.size, served.sha512)

            # copy-image to two more stores, one of them S3, written side by side.
            imports.start(downloaded, method={"name": "copy-image"}, stores=["warm", "cold"])
            assert imports.finished_task(downloaded, 2)["status"] == "success"
            image = imports.image(downloaded)
            assert sorted(image["stores"].split(",")) == ["cold", "fast", "warm"]
            assert image["os_hash_value"] == served.sha512
            assert s3_keys(moto_server) == [downloaded]
            assert (tmp_path / "warm" / downloaded).read_bytes() == served.path.read_bytes()

            run_with_s3_down(imports, s3, tmp_path, moto_server)
            refuse_hostile_images(imports, tmp_path)
            refuse_private_addresses(imports, web)
            # Nothing a failed import wrote stayed behind, in any store.
            assert files_of(tmp_path / "staging") == []
            assert s3_keys(moto_server) == [downloaded]


def run_with_s3_down(imports: Importer, s3: Relay, workdir: Path, moto: MotoServer) -> None:
    data: ImageData = random_image(workdir / "partial.raw", 2 * MiB + 1)
    s3.down()
    try:
        # all_stores_must_succeed false: the image goes active in the store that worked.
        lenient = create_and_stage(imports.client, data)
        imports.start(
            lenient,
            method={"name": "glance-direct"},
            stores=["warm", "cold"],
            all_stores_must_succeed=False,
        )
        assert imports.finished_task(lenient, 1)["status"] == "success"
        image = image_when_settled(imports.client, lenient, imports.topo)
        assert (image["status"], image["stores"]) == ("active", "warm")
        assert image["os_glance_failed_import"] == "cold"
        assert image["os_hash_value"] == data.sha512

        # all_stores_must_succeed true (the default): nothing is kept, the image is queued.
        strict = create_and_stage(imports.client, data)
        imports.start(strict, method={"name": "glance-direct"}, stores=["warm", "cold"])
        task = imports.finished_task(strict, 1)
        assert task["status"] == "failure"
        assert "cold" in task["message"]
        image = imports.image(strict)
        assert image["status"] == "queued"
        assert "stores" not in image or not image["stores"]
        assert not (workdir / "warm" / strict).exists()
    finally:
        s3.up()
    assert strict not in s3_keys(moto)


def refuse_hostile_images(imports: Importer, workdir: Path) -> None:
    samples = workdir / "samples"
    samples.mkdir()
    for builder, disk_format, reason in (
        (disk_images.qcow2_with_backing_file, "qcow2", "backing_file"),
        (disk_images.vmdk_extent_path, "vmdk", "Invalid extent filenames"),
    ):
        image_id = imports.stage_file(builder(samples), disk_format)
        imports.start(image_id, method={"name": "glance-direct"})
        task = imports.finished_task(image_id, 1)
        assert task["status"] == "failure"
        assert reason in task["message"], task["message"]
        assert imports.image(image_id)["status"] == "queued"
        for store in ("fast", "warm"):
            assert not (workdir / store / image_id).exists()


def refuse_private_addresses(imports: Importer, web: str) -> None:
    # Admitted (the first hop is the allowed server), then refused by the worker's fetch.
    redirected = imports.new_image()
    imports.start(
        redirected, method={"name": "web-download", "uri": f"{web}/to/{METADATA_SERVICE}"}
    )
    task = imports.finished_task(redirected, 1)
    assert task["status"] == "failure"
    assert "169.254.169.254" in task["message"]
    assert imports.image(redirected)["status"] == "queued"
    # Refused by the API before any job exists.
    for uri in (
        METADATA_SERVICE,
        "http://2130706433/disk.raw",  # 127.0.0.1 written as a number
        "http://127.0.0.1/disk.raw",
        "file:///etc/passwd",
        "ftp://localhost/disk.raw",
    ):
        image_id = imports.new_image()
        refused = imports.client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}}
        )
        assert refused.status_code == 400, (uri, refused.text)
        assert imports.client.get(f"/v2/images/{image_id}/tasks").json()["tasks"] == []
