"""The `glance` CLI against a multi-store server configured the way operators write it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from compat_helpers import CompatServer, MiB, free_port, running_server, server_env, write_image
from glance_shell import glance_all_ok, glance_ok, parse_properties, sha512_of

from store_servers import MotoServer, s3_client

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.compat

STORES = ("fast", "cheap", "cold")


def multistore_conf(workdir: Path, moto: MotoServer) -> Path:
    lines = [
        "[DEFAULT]",
        "enabled_backends = fast:file, cheap:file, cold:s3",
        "[glance_store]",
        "default_backend = fast",
        "[fast]",
        f"filesystem_store_datadir = {workdir / 'fast'}",
        "store_description = Fast local disk",
        "weight = 100",
        "[cheap]",
        f"filesystem_store_datadir = {workdir / 'cheap'}",
        "store_description = Cheap bulk disk",
        "[cold]",
        f"s3_store_host = {moto.endpoint}",
        "s3_store_access_key = compat-access",
        "s3_store_secret_key = compat-secret",
        "s3_store_bucket = glimpse-cold",
        "s3_store_create_bucket_on_put = true",
        "s3_store_bucket_url_format = path",
        "store_description = Object storage",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {workdir / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {workdir / 'tasks'}",
    ]
    path = workdir / "glimpse-api.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def multistore_server(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer
) -> Iterator[CompatServer]:
    workdir = tmp_path_factory.mktemp("multistore-server")
    env = server_env(workdir, free_port())
    env["GLIMPSE_CONFIG"] = str(multistore_conf(workdir, moto_server))
    with running_server(workdir, env) as server:
        yield server


def test_stores_info_lists_the_configured_stores(multistore_server: CompatServer) -> None:
    output = glance_ok(multistore_server.url, "stores-info")
    assert "fast" in output
    assert "Fast local disk" in output
    assert "cheap" in output
    assert "cold" in output
    assert "os_glance" not in output


def moto_object_size(moto: MotoServer, bucket: str, key: str) -> int:
    """The object's size as the S3 endpoint itself reports it."""
    s3 = s3_client(moto, "compat-access", "compat-secret")
    return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])


def test_upload_to_each_store_and_download_identical(
    multistore_server: CompatServer, moto_server: MotoServer, tmp_path: Path
) -> None:
    source = write_image(tmp_path / "disk.raw", (os.urandom(MiB) for _ in range(4)))
    created = glance_all_ok(
        multistore_server.url,
        *(
            (
                "image-create",
                "--name",
                f"on-{store}",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--store",
                store,
                "--file",
                str(source.path),
            )
            for store in STORES
        ),
    )
    workdir = multistore_server.log_file.parent
    for store, output in zip(STORES, created, strict=True):
        image = parse_properties(output)
        assert image["status"] == "active"
        assert image["stores"] == store
        assert image["os_hash_value"] == source.sha512
        if store == "cold":
            assert moto_object_size(moto_server, "glimpse-cold", image["id"]) == source.size
        else:
            assert (workdir / store / image["id"]).stat().st_size == source.size
        target = tmp_path / f"out-{store}"
        glance_ok(multistore_server.url, "image-download", "--file", str(target), image["id"])
        assert sha512_of(target) == source.sha512
    # Glance's stores-info --detail is for admins (the server runs noauth, as an admin).
    detail = glance_ok(multistore_server.url, "stores-info", "--detail")
    stores = json.loads(parse_properties(detail)["stores"])
    assert [(s["id"], s["type"], s["weight"]) for s in stores] == [
        ("fast", "file", 100),
        ("cheap", "file", 0),
        ("cold", "s3", 0),
    ]
    assert "data_dir" in stores[1]["properties"]
