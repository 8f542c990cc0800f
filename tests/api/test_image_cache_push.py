"""Cache notices: an image deleted or deactivated through one API node leaves every other node's
cache at once (through a real Redis or RabbitMQ broker), not at its next maintenance pass (an
hour away here); the cache API's calls act on their own node alone and send no notice."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cache_helpers import active_image, cache_conf, cache_dir, cached_files, runtime, state

from glimpse.cache.files import CacheDir
from glimpse.cache.notices import CacheNotices
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse_api.app import create_app
from support import free_port

PATIENCE = 20.0  # seconds a node has to act on a notice before the test fails
HOUR = 3600


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    fixture = "redis_db" if request.param == "redis" else "rabbitmq_vhost"
    url: str = request.getfixturevalue(fixture)
    return url


def exchange_name() -> str:
    """A deployment of its own: tests running at once on one broker do not hear each other."""
    return f"glimpse.cache.test-{uuid.uuid4().hex[:12]}"


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, failing after PATIENCE seconds."""
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {PATIENCE}s: {what}")
        await asyncio.sleep(0.05)


def notices(client: httpx.AsyncClient) -> CacheNotices:
    cache = runtime(client).cache
    assert cache is not None
    return cache.notices


async def node(
    make_settings: Any,
    client_for: Any,
    tmp_path: Path,
    *,
    name: str,
    broker: str,
    exchange: str,
) -> tuple[httpx.AsyncClient, Settings]:
    """An API node whose own maintenance pass is an hour away, listening for notices."""
    settings: Settings = make_settings(
        cache_conf(tmp_path, name, cache_prefetcher_interval=HOUR),
        celery={
            "broker_url": broker,
            "cache_notice_exchange": exchange,
            "broker_data_dir": str(tmp_path / "broker"),
        },
    )
    client: httpx.AsyncClient = await client_for(settings)
    await state(client)  # registered
    listening = notices(client).listening

    async def subscribed() -> bool:
        return listening.is_set()

    await eventually(subscribed, f"node {name} listens for cache notices")
    return client, settings


async def two_nodes(
    make_settings: Any, client_for: Any, tmp_path: Path, broker: str
) -> tuple[httpx.AsyncClient, Settings, httpx.AsyncClient, Settings]:
    exchange = exchange_name()
    node_a, settings_a = await node(
        make_settings, client_for, tmp_path, name="a", broker=broker, exchange=exchange
    )
    node_b, settings_b = await node(
        make_settings, client_for, tmp_path, name="b", broker=broker, exchange=exchange
    )
    return node_a, settings_a, node_b, settings_b


def holds(client: httpx.AsyncClient, settings: Settings, image_id: str, data: bytes) -> Any:
    """Whether the node holds the image: its row and its file with the image's bytes."""

    async def check() -> bool:
        listing = await state(client)
        path = cache_dir(settings) / image_id
        return (
            image_id in [e["image_id"] for e in listing["cached_images"]]
            and path.exists()
            and path.read_bytes() == data
        )

    return check


def has_no_files(settings: Settings) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return cached_files(settings) == []

    return check


async def test_deleting_an_image_through_one_node_removes_the_other_nodes_file(
    make_settings: Any, client_for: Any, tmp_path: Path, broker_url: str
) -> None:
    node_a, _, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path, broker_url)
    image_id, data = await active_image(node_a)
    assert (await node_b.get(f"/v2/images/{image_id}/file")).content == data
    await eventually(holds(node_b, settings_b, image_id, data), "node B caches the download")

    assert (await node_a.delete(f"/v2/images/{image_id}")).status_code == 204
    await eventually(has_no_files(settings_b), "node B removes its file")
    assert (await state(node_b))["cached_images"] == []
    assert notices(node_b).received == 1
    assert notices(node_a).received == 0  # its own notice: it had already acted


async def test_cache_calls_through_one_node_leave_the_other_alone(
    make_settings: Any, client_for: Any, tmp_path: Path, redis_db: str
) -> None:
    node_a, settings_a, node_b, settings_b = await two_nodes(
        make_settings, client_for, tmp_path, redis_db
    )
    images = [await active_image(node_a) for _ in range(3)]
    for image_id, data in images:
        assert (await node_b.get(f"/v2/images/{image_id}/file")).content == data
        await eventually(holds(node_b, settings_b, image_id, data), "node B caches it")
    queued, deleted, deactivated = (image_id for image_id, _ in images)

    # Node A queues, deletes and clears its own cache: no notice; then an image delete's notice,
    # which comes after any they might have sent (one Redis server orders its deliveries).
    assert (await node_a.put(f"/v2/cache/{queued}")).status_code == 202
    await eventually(holds(node_a, settings_a, queued, images[0][1]), "node A holds the image")
    assert (await node_a.delete(f"/v2/cache/{queued}")).status_code == 204
    assert (await node_a.delete("/v2/cache")).status_code == 204
    assert (await node_a.delete(f"/v2/images/{deleted}")).status_code == 204

    async def deleted_gone() -> bool:
        return cached_files(settings_b) == sorted([queued, deactivated])

    await eventually(deleted_gone, "node B removes the deleted image's file")
    assert notices(node_b).received == 1
    listing = await state(node_b)
    assert sorted(e["image_id"] for e in listing["cached_images"]) == sorted([queued, deactivated])
    assert listing["queued_images"] == []

    action = f"/v2/images/{deactivated}/actions/deactivate"
    assert (await node_a.post(action)).status_code == 204

    async def deactivated_gone() -> bool:
        return cached_files(settings_b) == [queued]

    await eventually(deactivated_gone, "node B removes the deactivated image's file")
    assert notices(node_b).received == 2


async def test_notices_stay_within_their_deployment(
    make_settings: Any, client_for: Any, tmp_path: Path, redis_db: str
) -> None:
    node_a, _, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path, redis_db)
    # Node C shares the database and the broker's database, on another deployment's exchange.
    other = exchange_name()
    node_c, settings_c = await node(
        make_settings, client_for, tmp_path, name="c", broker=redis_db, exchange=other
    )
    image_id, data = await active_image(node_a)
    for reader, settings in ((node_b, settings_b), (node_c, settings_c)):
        assert (await reader.get(f"/v2/images/{image_id}/file")).content == data
        await eventually(holds(reader, settings, image_id, data), "the node caches it")
    assert (await node_a.delete(f"/v2/images/{image_id}")).status_code == 204
    await eventually(has_no_files(settings_b), "node B removes its file")

    # A notice sent on C's exchange after B acted reaches C after anything sent on A's exchange
    # would have (one Redis server orders its deliveries): C must see that one alone.
    sender = CacheNotices(settings_c, "http://sender.test:9292")
    try:
        await sender.announce(str(uuid.uuid4()))
    finally:
        await sender.aclose()

    async def sentinel_taken() -> bool:
        return notices(node_c).received > 0

    await eventually(sentinel_taken, "node C takes the notice sent on its exchange")
    assert notices(node_c).received == 1
    assert cached_files(settings_c) == [image_id]  # left to its own read or pass
    assert (await state(node_c))["cached_images"] == []


def test_the_embedded_broker_sends_no_notices(make_settings: Any, tmp_path: Path) -> None:
    settings: Settings = make_settings(cache_conf(tmp_path, "a"))
    assert settings.celery.broker_url.startswith("filesystem://")
    assert not CacheNotices(settings, "http://node-a.test:9292").enabled


async def test_a_node_that_lost_the_broker_catches_up_when_back(
    make_settings: Any, client_for: Any, tmp_path: Path, redis_db: str
) -> None:
    node_a, _, node_b, settings_b = await two_nodes(make_settings, client_for, tmp_path, redis_db)
    image_id, data = await active_image(node_a)
    assert (await node_b.get(f"/v2/images/{image_id}/file")).content == data
    await eventually(holds(node_b, settings_b, image_id, data), "node B caches the download")
    listening = notices(node_b).listening
    client = redis.Redis.from_url(redis_db)
    try:
        name = f"glimpse-cache-notices:{notices(node_b).exchange.name}"
        mine = [c["id"] for c in client.client_list() if c["name"] == name]
        assert len(mine) >= 2  # node A's and node B's listeners: as if Redis restarted
        for client_id in mine:
            client.client_kill_filter(_id=client_id)
    finally:
        client.close()

    async def disconnected() -> bool:
        return not listening.is_set()

    await eventually(disconnected, "node B sees its broker connection gone")
    # Deleted while node B is away: the notice is lost, its catch-up on reconnection is not.
    assert (await node_a.delete(f"/v2/images/{image_id}")).status_code == 204
    await eventually(has_no_files(settings_b), "node B removes its file")


async def test_a_broker_that_is_down_delays_nothing_but_the_notices(
    make_settings: Any, database: Database, tmp_path: Path
) -> None:
    assert database is not None  # the schema exists before the app starts
    settings: Settings = make_settings(
        cache_conf(tmp_path, "a", cache_prefetcher_interval=HOUR),
        celery={"broker_url": f"redis://127.0.0.1:{free_port()}/0"},  # nothing answers there
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        image_id, data = await active_image(client)
        assert (await client.put(f"/v2/cache/{image_id}")).status_code == 202
        await eventually(holds(client, settings, image_id, data), "the node holds the image")
        assert (await client.delete(f"/v2/cache/{image_id}")).status_code == 204
        assert cached_files(settings) == []
        assert (await client.delete("/v2/cache")).status_code == 204
        assert not app.state.runtime.cache.notices.listening.is_set()
    assert [t for t in threading.enumerate() if t.name == "cache-notices"] == []


def listeners(broker: str, exchange: str) -> int:
    """How many listeners the broker holds on the exchange: on Redis, how many subscribers a
    message on its channel reaches (kombu subscribes by pattern, which PUBSUB NUMSUB does not
    count); on RabbitMQ, the queues in the test's own virtual host."""
    if broker.startswith("redis://"):
        db = broker.rsplit("/", 1)[1]
        client = redis.Redis.from_url(broker)
        try:
            return int(client.publish(f"/{db}.{exchange}", "{}"))
        finally:
            client.close()
    vhost = broker.rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "-p", vhost, "-q", "--no-table-headers", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return len([line for line in listed.stdout.splitlines() if line.startswith(exchange)])


async def test_a_stopped_node_leaves_no_listener_behind(
    make_settings: Any, database: Database, tmp_path: Path, broker_url: str
) -> None:
    assert database is not None  # the schema exists before the app starts
    exchange = exchange_name()
    settings: Settings = make_settings(
        cache_conf(tmp_path, "a", cache_prefetcher_interval=HOUR),
        celery={"broker_url": broker_url, "cache_notice_exchange": exchange},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        cache = app.state.runtime.cache
        listening = cache.notices.listening

        async def subscribed() -> bool:
            return listening.is_set()

        await eventually(subscribed, "the node listens")
        sender = CacheNotices(settings, "http://sender.test:9292")
        try:
            await sender.announce(str(uuid.uuid4()))
        finally:
            await sender.aclose()

        async def taken() -> bool:
            return bool(cache.notices.received)

        await eventually(taken, "the node takes a notice")
        if not broker_url.startswith("redis://"):  # a probe would be a malformed notice there
            assert listeners(broker_url, exchange) == 1
    assert not listening.is_set()
    assert [t for t in threading.enumerate() if t.name == "cache-notices"] == []
    assert listeners(broker_url, exchange) == 0


def test_one_process_of_a_node_fetches_what_a_notice_asks(tmp_path: Path) -> None:
    # Every process of a node hears each notice; the claim on the shared directory lets one
    # fetch (flock: separate opens conflict, as separate processes' would).
    directory = CacheDir(tmp_path / "cache")
    directory.prepare()
    image_id = str(uuid.uuid4())
    with directory.claim(image_id) as first:
        with directory.claim(image_id) as second:
            assert (first, second) == (True, False)
        with directory.claim(str(uuid.uuid4())) as other_image:
            assert other_image
    with directory.claim(image_id) as after_release:
        assert after_release
