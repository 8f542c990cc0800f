"""The image cache across API nodes sharing one database (each node's cache is its own, as in
Glance), and one store read per boot storm."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
from cache_helpers import (
    active_image,
    cache_conf,
    cache_dir,
    cached_files,
    counters,
    nodes,
    runtime,
    state,
    until_cached,
)

from factories import s3_section
from glimpse.config import Settings
from glimpse.db.repositories.cache import CacheRepository
from store_servers import MotoServer

NODE_A = "http://node-a.test:9292"
NODE_B = "http://node-b.test:9292"


async def maintain(client: httpx.AsyncClient) -> None:
    node = runtime(client)
    assert node.cache is not None
    await node.cache.maintain(node.image_data.load_for_prefetch)


async def queue_for_next_pass(client: httpx.AsyncClient, image_id: str) -> None:
    node = runtime(client)
    assert node.cache is not None
    node_id = await node.cache.node_id()
    async with node.database.write() as session:
        assert await CacheRepository(session).enqueue(image_id, node_id)


async def two_nodes(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> tuple[httpx.AsyncClient, Settings, httpx.AsyncClient, Settings]:
    settings_a: Settings = make_settings(cache_conf(tmp_path, "a"))
    settings_b: Settings = make_settings(cache_conf(tmp_path, "b"))
    return await client_for(settings_a), settings_a, await client_for(settings_b), settings_b


async def test_two_nodes_keep_caches_of_their_own(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    node_a, settings_a, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path)
    image_id, data = await active_image(node_a)
    for node in (node_a, node_b):
        assert (await node.get(f"/v2/images/{image_id}/file")).content == data
        await until_cached(node, image_id)
    holders = await node_a.get(f"/v2/cache/nodes/{image_id}")
    assert holders.json() == [NODE_A, NODE_B]
    listing = await state(node_b)
    assert [e["image_id"] for e in listing["cached_images"]] == [image_id]
    assert set(listing) == {"cached_images", "queued_images"}  # Glance's shape: clients print it
    every = await nodes(node_a)
    assert [n["node_reference_url"] for n in every] == [NODE_A, NODE_B]
    assert [[e["image_id"] for e in n["cached_images"]] for n in every] == [[image_id]] * 2

    # Deleting the entry through node A takes it out of A's cache only: B still serves its file.
    assert (await node_a.delete(f"/v2/cache/{image_id}")).status_code == 204
    assert cached_files(settings_a) == []
    assert (await state(node_a))["cached_images"] == []
    assert (await node_a.get(f"/v2/cache/nodes/{image_id}")).json() == [NODE_B]
    assert (await node_b.get(f"/v2/images/{image_id}/file")).content == data
    seen = await counters(node_b, NODE_B)
    assert (seen["hits"], seen["misses"], seen["evictions"]) == (1, 1, 0)
    assert (await counters(node_a, NODE_A))["evictions"] == 1
    assert cached_files(settings_b) == [image_id]

    # Node B's entry goes through node B.
    assert (await node_b.delete(f"/v2/cache/{image_id}")).status_code == 204
    assert cached_files(settings_b) == []


async def test_queueing_on_one_node_fills_that_node_only(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    node_a, settings_a, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path)
    await state(node_b)  # node B has registered
    image_id, data = await active_image(node_a)
    assert (await node_a.put(f"/v2/cache/{image_id}")).status_code == 202
    await until_cached(node_a, image_id)  # node A fetches at once
    assert (cache_dir(settings_a) / image_id).read_bytes() == data
    assert await state(node_b) == {"cached_images": [], "queued_images": []}
    await maintain(node_b)  # node B's prefetcher pass has nothing to fetch
    assert cached_files(settings_b) == []
    assert (await node_b.get(f"/v2/cache/nodes/{image_id}")).json() == [NODE_A]

    # Queued on node B as well, it is B's to fetch.
    assert (await node_b.put(f"/v2/cache/{image_id}")).status_code == 202
    await until_cached(node_b, image_id)
    assert (await node_b.get(f"/v2/cache/nodes/{image_id}")).json() == [NODE_A, NODE_B]

    # Deleting the image on node B evicts it on node A too, at A's next pass.
    assert (await node_b.delete(f"/v2/images/{image_id}")).status_code == 204
    assert cached_files(settings_b) == []
    assert (await state(node_a))["cached_images"] == []
    assert cached_files(settings_a) == [image_id]
    await maintain(node_a)
    assert cached_files(settings_a) == []


async def test_clearing_one_node_leaves_the_other(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    # tempest's test_remote_and_self_cache, with each node's queue too.
    node_a, settings_a, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path)
    image_id, _ = await active_image(node_a)
    for node in (node_a, node_b):
        assert (await node.put(f"/v2/cache/{image_id}")).status_code == 202
        await until_cached(node, image_id)
    # Queued on both nodes and left for their next prefetcher pass (PUT would fetch it at once).
    pending, _ = await active_image(node_a)
    for node in (node_a, node_b):
        await queue_for_next_pass(node, pending)
    assert (await state(node_a))["queued_images"] == [pending]

    cleared = await node_b.delete("/v2/cache")  # no target header: cache and queue
    assert cleared.status_code == 204
    assert await state(node_b) == {"cached_images": [], "queued_images": []}
    assert cached_files(settings_b) == []
    listing = await state(node_a)
    assert [e["image_id"] for e in listing["cached_images"]] == [image_id]
    assert listing["queued_images"] == [pending]
    await maintain(node_b)
    assert cached_files(settings_a) == [image_id]

    queue_only = await node_a.delete("/v2/cache", headers={"x-image-cache-clear-target": "queue"})
    assert queue_only.status_code == 204
    listing = await state(node_a)
    assert ([e["image_id"] for e in listing["cached_images"]], listing["queued_images"]) == (
        [image_id],
        [],
    )
    assert (await node_a.delete("/v2/cache")).status_code == 204
    assert await state(node_a) == {"cached_images": [], "queued_images": []}
    assert cached_files(settings_a) == []


async def test_boot_storm_reads_the_store_once(
    make_settings: Any, client_for: Any, tmp_path: Path, moto_server: MotoServer
) -> None:
    bucket = f"storm-{uuid.uuid4().hex[:8]}"
    settings: Settings = make_settings(
        cache_conf(tmp_path, "a"),
        enabled_backends="s3:s3",
        glance_store={"default_backend": "s3"},
        stores={"s3": s3_section(moto_server.endpoint, bucket, create_bucket=True)},
    )
    client: httpx.AsyncClient = await client_for(settings)
    data = os.urandom(8 * 1024 * 1024 + 13)
    image_id, _ = await active_image(client, data)
    object_path = f"/{bucket}/{image_id}"
    assert moto_server.requests("GET", object_path) == 0

    responses = await asyncio.gather(
        *(client.get(f"/v2/images/{image_id}/file") for _ in range(32))
    )
    digest = hashlib.sha256(data).hexdigest()
    assert [r.status_code for r in responses] == [200] * 32
    assert {hashlib.sha256(r.content).hexdigest() for r in responses} == {digest}
    assert moto_server.requests("GET", object_path) == 1
    await until_cached(client, image_id)
    seen = await counters(client, NODE_A)
    assert seen["fills"] == 1
    assert seen["hits"] + seen["misses"] == 32
