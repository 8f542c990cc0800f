"""An s3 staging store, for nodes that share no filesystem: real glimpse-api and glimpse-worker
processes in separate directories (each its own tasks directory), the staged data and the
images in moto's S3 server. One API node takes the data, another the import request, and the
worker downloads the staged object to its own disk to convert and inspect it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import disk_images
from store_servers import HttpServer, MotoServer, s3_client
from topology import (
    OCTET,
    Topology,
    backing_sections,
    create_and_stage,
    downloaded_sha512,
    image_when_settled,
    random_image,
    topology,
    wait_for,
)

MiB = 1024 * 1024
ACCESS, SECRET = "staging-access", "staging-secret"


@dataclass(frozen=True)
class Buckets:
    staging: str
    images: str
    spare: str


def s3_section(moto: MotoServer, bucket: str) -> list[str]:
    return [
        f"s3_store_host = {moto.host}",
        f"s3_store_access_key = {ACCESS}",
        f"s3_store_secret_key = {SECRET}",
        f"s3_store_bucket = {bucket}",
        "s3_store_create_bucket_on_put = true",
        "s3_store_bucket_url_format = path",
    ]


def node_conf(
    node: Path, backing: list[str], moto: MotoServer, buckets: Buckets, web: str
) -> list[str]:
    """One node's config: only its tasks directory is its own disk; everything the nodes
    share is in S3 or PostgreSQL."""
    return [
        "[DEFAULT]",
        "enabled_backends = images:s3, spare:s3",
        "[glance_store]",
        "default_backend = images",
        "[images]",
        *s3_section(moto, buckets.images),
        "[spare]",
        *s3_section(moto, buckets.spare),
        "[os_glance_staging_store]",
        *s3_section(moto, buckets.staging),
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {node / 'tasks'}",
        "[image_import_opts]",
        "image_import_plugins = image_conversion",
        "[image_conversion]",
        "output_format = raw",
        "[import_filtering_opts]",
        "allowed_hosts = localhost",
        f"allowed_ports = {urlsplit(web).port}",
        *backing,
    ]


@dataclass
class Nodes:
    """Node A stages; node B takes import requests and runs the worker."""

    a: Topology
    b: Topology
    client_a: httpx.Client
    client_b: httpx.Client
    moto: MotoServer
    buckets: Buckets

    def keys(self, bucket: str) -> list[str]:
        client = s3_client(self.moto, ACCESS, SECRET)
        try:
            objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        except client.exceptions.NoSuchBucket:
            return []
        return sorted(o["Key"] for o in objects)

    def staged(self) -> list[str]:
        return self.keys(self.buckets.staging)

    def logs(self) -> str:
        return self.a.logs() + self.b.logs()

    def import_(self, image_id: str, **body: Any) -> dict[str, Any]:
        started = self.client_b.post(f"/v2/images/{image_id}/import", json=body)
        assert started.status_code == 202, started.text
        image = image_when_settled(self.client_b, image_id, self.b)
        if body["method"]["name"] == "copy-image":
            image = wait_for(f"copy of {image_id}", lambda: self._copied(image_id))
        return image

    def _copied(self, image_id: str) -> dict[str, Any] | None:
        tasks = self.client_b.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and all(t["status"] in {"success", "failure"} for t in tasks):
            image: dict[str, Any] = self.client_b.get(f"/v2/images/{image_id}").json()
            return image
        return None

    def task(self, image_id: str) -> dict[str, Any]:
        tasks = self.client_b.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        newest: dict[str, Any] = max(tasks, key=lambda t: t["created_at"])
        return newest


def files_of(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def nodes(
    tmp_path: Path,
    database_url: str,
    redis_db: str,
    moto_server: MotoServer,
    http_server: HttpServer,
) -> Iterator[Nodes]:
    tag = uuid.uuid4().hex[:10]
    buckets = Buckets(f"staging-{tag}", f"images-{tag}", f"spare-{tag}")
    web = http_server.base
    dir_a, dir_b = tmp_path / "node-a", tmp_path / "node-b"
    dir_a.mkdir()
    dir_b.mkdir()
    backing = backing_sections(database_url, redis_db)
    conf_a = node_conf(dir_a, backing, moto_server, buckets, web)
    conf_b = node_conf(dir_b, backing, moto_server, buckets, web)
    with (
        topology(dir_a, conf_a) as node_a,
        topology(dir_b, conf_b) as node_b,
        httpx.Client(base_url=node_a.url, timeout=60) as client_a,
        httpx.Client(base_url=node_b.url, timeout=60) as client_b,
    ):
        node_a.start_api()
        node_b.start_api()
        node_b.start_worker()
        yield Nodes(node_a, node_b, client_a, client_b, moto_server, buckets)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_imports_through_an_s3_staging_store(
    nodes: Nodes, tmp_path: Path, http_server: HttpServer
) -> None:
    # glance-direct: staged on node A, imported through node B.
    image = random_image(tmp_path / "image.raw", 5 * MiB + 3)
    image_id = create_and_stage(nodes.client_a, image)
    assert nodes.staged() == [image_id]
    uploading = nodes.client_b.get(f"/v2/images/{image_id}").json()
    assert (uploading["status"], uploading["size"]) == ("uploading", image.size)
    settled = nodes.import_(image_id, method={"name": "glance-direct"})
    assert settled["status"] == "active", nodes.logs()
    assert (settled["size"], settled["checksum"]) == (image.size, image.md5)
    assert (settled["os_hash_algo"], settled["os_hash_value"]) == ("sha512", image.sha512)
    assert settled["stores"] == "images"
    assert downloaded_sha512(nodes.client_a, image_id) == image.sha512
    assert nodes.keys(nodes.buckets.images) == [image_id]
    assert nodes.staged() == []

    # A qcow2 converted to raw on the worker's copy of the staged object.
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(range(256)) * 4096 + bytes(2 * MiB) + bytes(range(256)) * 4096)
    qcow2 = tmp_path / "disk.qcow2"
    disk_images.qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    converted_id = stage_file(nodes.client_a, qcow2, "qcow2")
    assert nodes.staged() == [converted_id]
    converted = nodes.import_(converted_id, method={"name": "glance-direct"})
    assert converted["status"] == "active", nodes.logs()
    expected = raw.read_bytes()
    assert (converted["disk_format"], converted["size"]) == ("raw", len(expected))
    assert converted["checksum"] == hashlib.md5(expected, usedforsecurity=False).hexdigest()
    assert converted["os_hash_value"] == hashlib.sha512(expected).hexdigest()
    assert downloaded_sha512(nodes.client_a, converted_id) == hashlib.sha512(expected).hexdigest()
    assert nodes.staged() == []

    # A hostile image fails on the worker: the image is queued again, its stage removed.
    hostile_id = stage_file(nodes.client_a, disk_images.qcow2_with_backing_file(tmp_path), "qcow2")
    refused = nodes.import_(hostile_id, method={"name": "glance-direct"})
    assert refused["status"] == "queued"
    assert "backing_file" in nodes.task(hostile_id)["message"]
    assert nodes.staged() == []

    # web-download and copy-image stage on the worker's disk, never in the bucket.
    served = random_image(http_server.root / "served.raw", 2 * MiB + 7)
    web = f"http://localhost:{urlsplit(http_server.base).port}/files/served.raw"
    downloaded_id = new_image(nodes.client_b)
    fetched = nodes.import_(downloaded_id, method={"name": "web-download", "uri": web})
    assert fetched["status"] == "active", nodes.logs()
    assert (fetched["size"], fetched["os_hash_value"]) == (served.size, served.sha512)
    copied = nodes.import_(downloaded_id, method={"name": "copy-image"}, stores=["spare"])
    assert sorted(copied["stores"].split(",")) == ["images", "spare"], nodes.logs()
    assert nodes.keys(nodes.buckets.spare) == [downloaded_id]
    assert nodes.staged() == []

    # Neither node kept a file of any import.
    for node in (nodes.a, nodes.b):
        assert files_of(node.workdir / "tasks") == []
        assert not (node.workdir / "data").exists()  # no default staging directory either


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_deleting_a_staged_image_removes_its_object(nodes: Nodes, tmp_path: Path) -> None:
    image = random_image(tmp_path / "image.raw", MiB + 1)
    kept_id = create_and_stage(nodes.client_a, image)
    deleted_id = create_and_stage(nodes.client_a, image)
    assert nodes.staged() == sorted([kept_id, deleted_id])
    deleted = nodes.client_b.delete(f"/v2/images/{deleted_id}")
    assert deleted.status_code == 204, deleted.text
    assert nodes.staged() == [kept_id]
    assert nodes.client_a.get(f"/v2/images/{deleted_id}").status_code == 404


def new_image(client: httpx.Client, disk_format: str = "raw") -> str:
    body = {"disk_format": disk_format, "container_format": "bare", "name": "s3-staged"}
    created = client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


def stage_file(client: httpx.Client, path: Path, disk_format: str) -> str:
    image_id = new_image(client, disk_format)
    staged = client.put(f"/v2/images/{image_id}/stage", content=path.read_bytes(), headers=OCTET)
    assert staged.status_code == 204, staged.text
    return image_id


def test_a_staging_store_without_bucket_stops_start_up(tmp_path: Path) -> None:
    conf = [
        "[os_glance_staging_store]",
        "s3_store_host = 127.0.0.1:9",
        f"s3_store_access_key = {ACCESS}",
        f"s3_store_secret_key = {SECRET}",
    ]
    with topology(tmp_path, conf) as node:
        for program in ("glimpse-api", "glimpse-worker"):
            ran = node.run(program)
            assert ran.returncode != 0
            assert (
                "[os_glance_staging_store] an s3 staging store needs s3_store_bucket" in ran.stderr
            ), ran.stdout + ran.stderr
