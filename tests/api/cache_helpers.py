"""Helpers for the image cache tests: a glance-api.conf with the cache on, and the nodes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx

from factories import OCTET, create
from glimpse.config import Settings
from glimpse_api.deps import ApiRuntime


def cache_conf(
    tmp_path: Path, node: str = "a", *, flavor: str = "cachemanagement", **options: Any
) -> Path:
    """A glance-api.conf as Glance's docs write it for the cache, one per node."""
    lines = [
        "[DEFAULT]",
        f"image_cache_dir = {tmp_path / ('cache-' + node)}",
        f"worker_self_reference_url = http://node-{node}.test:9292",
        "image_cache_driver = centralized_db",
        *(f"{name} = {value}" for name, value in options.items()),
        "",
        "[paste_deploy]",
        f"flavor = {flavor}",
        "",
    ]
    path = tmp_path / f"glance-api-{node}.conf"
    path.write_text("\n".join(lines))
    return path


def cache_dir(settings: Settings) -> Path:
    assert settings.image_cache_dir is not None
    return settings.image_cache_dir


def cached_files(settings: Settings) -> list[str]:
    root = cache_dir(settings)
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.exists() else []


def store_file(settings: Settings, image_id: str) -> Path:
    return settings.store_datadir(settings.default_store) / image_id


async def active_image(client: httpx.AsyncClient, data: bytes | None = None) -> tuple[str, bytes]:
    data = os.urandom(300_000) if data is None else data
    image = await create(client)
    response = await client.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET)
    assert response.status_code == 204, response.text
    return image["id"], data


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v2/cache")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def nodes(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v2/cache/nodes")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["nodes"]
    return result


async def counters(client: httpx.AsyncClient, url: str) -> dict[str, int]:
    (node,) = [n for n in await nodes(client) if n["node_reference_url"] == url]
    result: dict[str, int] = node["counters"]
    return result


async def until_cached(client: httpx.AsyncClient, image_id: str, rounds: int = 200) -> None:
    """Wait for a background fill to be recorded (bounded; the fill itself is what's tested)."""
    for _ in range(rounds):
        listing = await state(client)
        if image_id in [e["image_id"] for e in listing["cached_images"]]:
            return
        await asyncio.sleep(0.05)
    msg = f"image {image_id} was not cached"
    raise AssertionError(msg)


def runtime(client: httpx.AsyncClient) -> ApiRuntime:
    """The node's runtime, to run its scheduled cache pass now instead of waiting for it."""
    transport = client._transport  # noqa: SLF001 -- the test's own ASGITransport
    assert isinstance(transport, httpx.ASGITransport)
    found: ApiRuntime = transport.app.state.runtime  # type: ignore[attr-defined] -- FastAPI's app
    return found
