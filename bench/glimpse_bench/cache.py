"""Phase `--cache`: downloads through the image cache over an s3 store, cold, warm and a storm."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Final

import httpx

from glimpse_bench.clients import HttpxClient, TransferError, download_rate
from glimpse_bench.common import CACHE, MB, MiB, free_port
from glimpse_bench.drivers import moto_server
from glimpse_bench.results import Results
from glimpse_bench.server import Api, GlimpseServer

STORM_CLIENTS: Final = 32


class CacheServer(GlimpseServer):
    """glimpse-api with the image cache on (cachemanagement flavor) over an s3 store."""

    s3_endpoint: str = ""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        config = self.workdir / "glance-api.conf"
        config.write_text(
            "\n".join(
                [
                    "[DEFAULT]",
                    "enabled_backends = s3:s3",
                    f"image_cache_dir = {self.workdir / 'cache'}",
                    f"worker_self_reference_url = {self.base}",
                    "[glance_store]",
                    "default_backend = s3",
                    "[s3]",
                    f"s3_store_host = {self.s3_endpoint}",
                    "s3_store_access_key = bench",
                    "s3_store_secret_key = bench",
                    "s3_store_bucket = bench-cache",
                    "s3_store_create_bucket_on_put = true",
                    "s3_store_bucket_url_format = path",
                    "[paste_deploy]",
                    "flavor = cachemanagement",
                    "",
                ]
            )
        )
        env["GLIMPSE_CONFIG"] = str(config)
        return env


def store_reads(log_path: Path, image_id: str) -> int:
    return sum(
        f"GET /bench-cache/{image_id} " in line
        for line in log_path.read_text(errors="replace").splitlines()
    )


async def wait_cached(client: httpx.AsyncClient, base: str, image_id: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listing = (await client.get(f"{base}/v2/cache")).json()
        if image_id in [entry["image_id"] for entry in listing.get("cached_images", [])]:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"image {image_id} was not cached within 300 s")


async def measure_cache(workdir: Path, image_size: int, storm_size: int, results: Results) -> None:
    """Download from the store through a cold cache, then from the warm cache; then 32 clients
    at once on one cold image (store reads counted in moto's request log)."""
    results.group = CACHE
    moto_log = workdir / "moto-cache.log"
    cache_dir = workdir / "cache-node"
    cache_dir.mkdir()
    with moto_server(moto_log) as (endpoint, _):
        server = CacheServer(cache_dir, free_port())
        server.s3_endpoint = endpoint
        bulk = HttpxClient()
        try:
            server.start()
            async with httpx.AsyncClient(timeout=600.0) as client:
                await server.wait_ready(client)
                api = Api(server.base, client, results)
                image_id = await api.create("bench-cache")
                storm_id = await api.create("bench-storm")
                if image_id is None or storm_id is None:
                    raise RuntimeError("could not create the cache benchmark images")
                await bulk.upload(server.base, f"/v2/images/{image_id}/file", image_size)
                await bulk.upload(server.base, f"/v2/images/{storm_id}/file", storm_size)
                path = f"/v2/images/{image_id}/file"
                cold = await download_rate(bulk, server.base, path, image_size)
                await wait_cached(client, server.base, image_id)
                warm = await download_rate(bulk, server.base, path, image_size)
                size = f"{image_size // MiB} MiB, s3 store on moto"
                results.add("Download, cold cache (from the store)", f"{cold:.0f} MB/s", size)
                results.add("Download, warm cache", f"{warm:.0f} MB/s", size)
                storm_path = f"/v2/images/{storm_id}/file"
                started = time.perf_counter()
                received = await asyncio.gather(
                    *(bulk.download(server.base, storm_path) for _ in range(STORM_CLIENTS))
                )
                wall = time.perf_counter() - started
                if received != [storm_size] * STORM_CLIENTS:
                    raise TransferError(f"boot storm: sizes {sorted(set(received))}")
                results.add(
                    f"{STORM_CLIENTS} concurrent cold downloads of one image",
                    f"{wall:.2f} s",
                    f"{storm_size // MiB} MiB each, "
                    f"{STORM_CLIENTS * storm_size / wall / MB:.0f} MB/s in all",
                )
                results.add("Store reads for those downloads", str(store_reads(moto_log, storm_id)))
        finally:
            server.stop()
            await bulk.aclose()
            results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])


async def cache_only(workdir: Path, image_size: int, storm_size: int) -> Results:
    results = Results()
    await measure_cache(workdir, image_size, storm_size, results)
    return results
