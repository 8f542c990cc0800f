"""The image cache: downloads through it (hit, miss, Range), verification of fills, eviction
on delete and deactivation, and the cache API's answers on one node."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from cache_helpers import (
    active_image,
    cache_conf,
    cache_dir,
    cached_files,
    counters,
    state,
    store_file,
    until_cached,
)

from factories import create
from glimpse.config import Settings, load_settings
from personas import ADMIN, OWNER, proxy_client

NODE_A = "http://node-a.test:9292"


@pytest.fixture
def cache_settings(make_settings: Any, tmp_path: Path) -> Settings:
    settings: Settings = make_settings(cache_conf(tmp_path))
    return settings


@pytest.fixture
async def cached_client(client_for: Any, cache_settings: Settings) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(cache_settings)
    return client


def test_glance_options_turn_the_cache_on(cache_settings: Settings) -> None:
    assert cache_settings.cache_enabled
    assert cache_settings.cache_serving
    assert cache_settings.image_cache_driver == "centralized_db"
    assert cache_settings.node_url(9292) == NODE_A
    assert cache_settings.image_cache_max_size == 10 * 1024**3
    assert cache_settings.image_cache_stall_time == 86400
    assert cache_settings.cache_prefetcher_interval == 300


async def test_versions_list_the_cache_api_when_it_is_on(
    cached_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    versions = (await cached_client.get("/versions")).json()["versions"]
    ids = [v["id"] for v in versions]
    assert {"v2.14", "v2.16", "v2.18"} <= set(ids)
    assert [v["id"] for v in versions if v["status"] == "CURRENT"] == ["v2.18"]
    without = (await client.get("/versions")).json()["versions"]
    assert not {"v2.14", "v2.16", "v2.18"} & {v["id"] for v in without}
    assert [v["id"] for v in without if v["status"] == "CURRENT"] == ["v2.17"]


async def test_a_miss_fills_the_cache_and_the_next_download_is_a_hit(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    assert (await state(cached_client))["cached_images"] == []
    first = await cached_client.get(f"/v2/images/{image_id}/file")
    assert first.status_code == 200
    assert first.content == data
    assert first.headers["content-md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    await until_cached(cached_client, image_id)
    assert cached_files(cache_settings) == [image_id]
    assert (cache_dir(cache_settings) / image_id).read_bytes() == data
    # The store's copy goes: the next download can only come from the cache.
    store_file(cache_settings, image_id).unlink()
    second = await cached_client.get(f"/v2/images/{image_id}/file")
    assert second.status_code == 200
    assert second.content == data
    (entry,) = (await state(cached_client))["cached_images"]
    assert entry["image_id"] == image_id
    assert entry["size"] == len(data)
    assert entry["hits"] == 1
    assert entry["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (await counters(cached_client, NODE_A)) == {
        "hits": 1,
        "misses": 1,
        "bytes_served": len(data),
        "fills": 1,
        "evictions": 0,
    }


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=0-9", 0, 10), ("bytes=299990-", 299990, 300000), ("bytes=-24", 299976, 300000)],
)
async def test_range_requests_on_a_cached_image(
    cached_client: httpx.AsyncClient, cache_settings: Settings, header: str, start: int, stop: int
) -> None:
    image_id, data = await active_image(cached_client)
    assert (await cached_client.get(f"/v2/images/{image_id}/file")).status_code == 200
    await until_cached(cached_client, image_id)
    store_file(cache_settings, image_id).unlink()  # only the cache can answer now
    response = await cached_client.get(f"/v2/images/{image_id}/file", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[start:stop]
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(data)}"
    refused = await cached_client.get(
        f"/v2/images/{image_id}/file", headers={"Range": "bytes=300000-"}
    )
    assert refused.status_code == 416
    assert refused.headers["content-range"] == "bytes */300000"


async def test_a_range_miss_is_read_from_the_store_and_not_cached(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    response = await cached_client.get(
        f"/v2/images/{image_id}/file", headers={"Range": "bytes=5-14"}
    )
    assert response.status_code == 206
    assert response.content == data[5:15]
    assert cached_files(cache_settings) == []
    assert (await counters(cached_client, NODE_A))["misses"] == 1


async def test_a_corrupt_fill_is_never_served_nor_kept(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    # The store now returns other bytes of the same size (bit rot, a tampered object).
    corrupt = bytes(b ^ 0xFF for b in data[:1000]) + data[1000:]
    store_file(cache_settings, image_id).write_bytes(corrupt)
    # Whoever meets the fill gets its body cut short, or a 503 if it has ended already: never
    # the whole corrupt image.
    try:
        response = await cached_client.get(f"/v2/images/{image_id}/file")
    except Exception as exc:  # noqa: BLE001 -- what the app raised mid-body
        assert "checksum" in str(exc)  # noqa: PT017 -- the cut-off's reason
    else:
        assert response.status_code == 503
    listing = await state(cached_client)
    assert listing["cached_images"] == []
    assert cached_files(cache_settings) == []
    assert list((cache_dir(cache_settings) / "incomplete").iterdir()) == []
    assert (await counters(cached_client, NODE_A))["fills"] == 0


async def test_a_damaged_cache_file_is_discarded_and_the_store_serves(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    assert (await cached_client.get(f"/v2/images/{image_id}/file")).status_code == 200
    await until_cached(cached_client, image_id)
    (cache_dir(cache_settings) / image_id).write_bytes(data[:1000])  # truncated on disk
    response = await cached_client.get(f"/v2/images/{image_id}/file")
    assert response.status_code == 200
    assert response.content == data
    await until_cached(cached_client, image_id)  # filled again, from the store
    assert (cache_dir(cache_settings) / image_id).read_bytes() == data


async def test_a_partial_file_is_never_served(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    await state(cached_client)  # the node and its directory exist
    partial = cache_dir(cache_settings) / "incomplete" / f"{image_id}.left-over"
    partial.write_bytes(data[:5000])
    response = await cached_client.get(f"/v2/images/{image_id}/file")
    assert response.content == data
    await until_cached(cached_client, image_id)
    assert (cache_dir(cache_settings) / image_id).read_bytes() == data


@pytest.mark.parametrize("how", ["delete", "deactivate"])
async def test_delete_and_deactivate_evict(
    cached_client: httpx.AsyncClient, cache_settings: Settings, how: str
) -> None:
    image_id, data = await active_image(cached_client)
    assert (await cached_client.get(f"/v2/images/{image_id}/file")).content == data
    await until_cached(cached_client, image_id)
    if how == "delete":
        assert (await cached_client.delete(f"/v2/images/{image_id}")).status_code == 204
    else:
        action = f"/v2/images/{image_id}/actions/deactivate"
        assert (await cached_client.post(action)).status_code == 204
    listing = await state(cached_client)
    assert listing["cached_images"] == []
    assert cached_files(cache_settings) == []
    assert (await counters(cached_client, NODE_A))["evictions"] == 1
    if how == "deactivate":
        # An admin still reads a deactivated image, from the store, and it is not cached.
        response = await cached_client.get(f"/v2/images/{image_id}/file")
        assert response.content == data
        assert cached_files(cache_settings) == []


async def test_queue_prefetches_the_image(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    image_id, data = await active_image(cached_client)
    response = await cached_client.put(f"/v2/cache/{image_id}")
    assert response.status_code == 202
    assert response.content == b""
    await until_cached(cached_client, image_id)
    assert (cache_dir(cache_settings) / image_id).read_bytes() == data
    listing = await state(cached_client)
    assert listing["queued_images"] == []
    nodes = await cached_client.get(f"/v2/cache/nodes/{image_id}")
    assert nodes.status_code == 200
    assert nodes.json() == [NODE_A]


async def test_queue_refuses_what_cannot_be_cached(cached_client: httpx.AsyncClient) -> None:
    queued = await create(cached_client)
    response = await cached_client.put(f"/v2/cache/{queued['id']}")
    assert response.status_code == 400
    assert "Only images with status active" in response.text
    missing = await cached_client.put("/v2/cache/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    # tempest's ImageCachingTest queues an id that is not even a UUID.
    assert (await cached_client.put("/v2/cache/non-existing-image-id")).status_code == 404
    assert (await cached_client.delete("/v2/cache/non-existing-image-id")).status_code == 404
    nodes = await cached_client.get("/v2/cache/nodes/00000000-0000-4000-8000-000000000000")
    assert nodes.status_code == 404
    gone = await cached_client.delete("/v2/cache/00000000-0000-4000-8000-000000000000")
    assert gone.status_code == 404


async def test_delete_entry_and_clear_targets(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    first, _ = await active_image(cached_client)
    second, _ = await active_image(cached_client)
    for image_id in (first, second):
        await cached_client.get(f"/v2/images/{image_id}/file")
        await until_cached(cached_client, image_id)
    assert (await cached_client.delete(f"/v2/cache/{first}")).status_code == 204
    assert [e["image_id"] for e in (await state(cached_client))["cached_images"]] == [second]
    assert cached_files(cache_settings) == [second]
    bad = await cached_client.delete("/v2/cache", headers={"x-image-cache-clear-target": "all"})
    assert bad.status_code == 400
    cleared = await cached_client.delete(
        "/v2/cache", headers={"x-image-cache-clear-target": "cache"}
    )
    assert cleared.status_code == 204
    assert cached_files(cache_settings) == []
    assert (await state(cached_client))["cached_images"] == []


async def test_prune_removes_the_least_recently_used(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings: Settings = make_settings(cache_conf(tmp_path, image_cache_max_size=250_000))
    client = await client_for(settings)
    ids = []
    for _ in range(3):
        image_id, _ = await active_image(client, os.urandom(100_000))
        await client.get(f"/v2/images/{image_id}/file")
        await until_cached(client, image_id)
        ids.append(image_id)
    await client.get(f"/v2/images/{ids[0]}/file")  # now the oldest access is ids[1]
    response = await client.post("/v2/cache/prune")
    assert response.status_code == 200
    assert response.json() == {"total_files_pruned": 1, "total_bytes_pruned": 100_000}
    assert cached_files(settings) == sorted([ids[0], ids[2]])


async def test_clean_removes_stalled_files_only(
    cached_client: httpx.AsyncClient, cache_settings: Settings
) -> None:
    await state(cached_client)
    incomplete = cache_dir(cache_settings) / "incomplete"
    stalled, fresh = incomplete / "stalled", incomplete / "fresh"
    stalled.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)
    old = stalled.stat().st_mtime - 2 * 86400
    os.utime(stalled, (old, old))
    response = await cached_client.post("/v2/cache/clean")
    assert response.status_code == 200
    assert sorted(p.name for p in incomplete.iterdir()) == ["fresh"]


async def test_cache_api_policy_and_disabled_site(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    cached = await proxy_client(make_settings, client_for, config_file=cache_conf(tmp_path))
    plain = await proxy_client(make_settings, client_for)
    for method, path in [
        ("GET", "/v2/cache"),
        ("DELETE", "/v2/cache"),
        ("POST", "/v2/cache/clean"),
        ("POST", "/v2/cache/prune"),
    ]:
        assert (await cached.request(method, path, headers=OWNER)).status_code == 403
        assert (await plain.request(method, path, headers=OWNER)).status_code == 403
        assert (await plain.request(method, path, headers=ADMIN)).status_code == 404
        assert (await cached.request(method, path, headers=ADMIN)).status_code in {200, 204}


def test_a_caching_flavor_without_a_cache_dir_serves_without_cache(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[paste_deploy]\nflavor = caching\n")
    settings = load_settings(conf)
    assert settings.paste_deploy.caching
    assert not settings.cache_enabled
    assert not settings.cache_serving


async def test_literal_cache_paths_allow_only_their_own_methods(
    cached_client: httpx.AsyncClient,
) -> None:
    for path, allowed in [
        ("/v2/cache/clean", "POST"),
        ("/v2/cache/prune", "POST"),
        ("/v2/cache/nodes", "GET"),
        ("/v2/cache", "DELETE, GET"),
    ]:
        response = await cached_client.request("OPTIONS", path)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed
