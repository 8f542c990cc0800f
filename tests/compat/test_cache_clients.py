"""The `glance` CLI's cache commands and openstacksdk's cache calls against a server with the
image cache on, configured as Glance's documentation writes it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from compat_helpers import (
    SDK_MARKS,
    CompatServer,
    free_port,
    running_server,
    server_env,
    write_image,
)
from glance_shell import glance_ok, parse_properties
from openstack import connection

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = SDK_MARKS  # compat, and openstacksdk's own deprecation warnings let through

WAIT = 60.0  # seconds for the prefetcher to fill an image


def cache_conf(workdir: Path, url: str) -> Path:
    path = workdir / "glance-api.conf"
    path.write_text(
        "\n".join(
            [
                "[DEFAULT]",
                f"image_cache_dir = {workdir / 'cache'}",
                "image_cache_driver = centralized_db",
                f"worker_self_reference_url = {url}",
                "[paste_deploy]",
                "flavor = cachemanagement",
                "",
            ]
        )
    )
    return path


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompatServer]:
    workdir = tmp_path_factory.mktemp("cache-server")
    port = free_port()
    env = server_env(workdir, port)
    env["GLIMPSE_CONFIG"] = str(cache_conf(workdir, f"http://127.0.0.1:{port}"))
    with running_server(workdir, env) as server:
        yield server


def _state(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v2/cache", headers={"X-Auth-Token": "compat-token"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _wait_cached(url: str, image_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if image_id in [e["image_id"] for e in _state(url)["cached_images"]]:
            return
        time.sleep(0.2)
    pytest.fail(f"image {image_id} was not cached within {WAIT:.0f} s")


def _rows(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in output.splitlines()
        if line.startswith("|")
    ][1:]


def test_cache_commands(cache_server: CompatServer, tmp_path: Path) -> None:
    url = cache_server.url
    image = write_image(tmp_path / "disk.raw", [b"cached image data " * 4096])
    created = parse_properties(
        glance_ok(
            url,
            "image-create",
            "--name",
            "cached",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--file",
            str(image.path),
        )
    )
    image_id = created["id"]
    glance_ok(url, "cache-queue", image_id)
    _wait_cached(url, image_id)
    (row,) = _rows(glance_ok(url, "cache-list"))
    assert row[0] == image_id
    assert row[1] == "cached"
    assert row[4] == str(image.size)
    nodes = _rows(glance_ok(url, "cache-nodes-list", image_id))
    assert nodes == [[url]]
    assert "Pruned 0 file(s), 0 byte(s)." in glance_ok(url, "cache-prune")
    glance_ok(url, "cache-clean")

    glance_ok(url, "cache-delete", image_id)
    assert _state(url) == {"cached_images": [], "queued_images": []}
    assert not (cache_server.log_file.parent / "cache" / image_id).exists()

    glance_ok(url, "cache-queue", image_id)
    _wait_cached(url, image_id)
    glance_ok(url, "cache-clear", "--target", "cache")
    assert _state(url)["cached_images"] == []
    glance_ok(url, "cache-clear")  # both
    assert _state(url) == {"cached_images": [], "queued_images": []}


def test_openstacksdk_cache_calls(cache_server: CompatServer) -> None:
    url = cache_server.url
    conn = connection.Connection(
        auth_type="none", auth={"endpoint": url}, image_endpoint_override=url
    )
    try:
        created = conn.image.create_image(
            name="sdk-cached",
            data=b"sdk cache data " * 8192,
            disk_format="raw",
            container_format="bare",
        )
        conn.image.queue_image(created.id)
        _wait_cached(url, created.id)
        cache = conn.image.get_image_cache()
        assert [entry["image_id"] for entry in cache.cached_images] == [created.id]
        assert conn.image.cached_image_nodes(created.id) == [url]
        assert conn.image.prune_cache() == {"total_files_pruned": 0, "total_bytes_pruned": 0}
        conn.image.clean_cache()
        conn.image.cache_delete_image(created.id)
        assert _state(url)["cached_images"] == []
        conn.image.queue_image(created.id)
        _wait_cached(url, created.id)
        conn.image.clear_cache("both")
        assert _state(url) == {"cached_images": [], "queued_images": []}
    finally:
        conn.close()
