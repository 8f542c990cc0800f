"""Phases: request latency and concurrency of the JSON API."""

from __future__ import annotations

import random
import time

from glimpse_bench.clients import timed
from glimpse_bench.common import (
    CONCURRENCY,
    HAMMER_REQUESTS,
    HAMMER_SECONDS,
    HAMMER_WORKERS,
    LATENCY,
    LATENCY_REQUESTS,
    SEED,
    SETUP_CONCURRENCY,
    SETUP_IMAGES,
    cpu_share,
)
from glimpse_bench.results import percentile
from glimpse_bench.server import Api, gather_limited, hammer_raw, latencies


async def measure_latency(api: Api, pid: int) -> list[str]:
    """Create the listing's images, then time create, show and list; return the created ids."""
    print(f"Latency (setting up {SETUP_IMAGES} images first)", flush=True)
    api.results.group = LATENCY
    created: list[str] = []

    async def setup(index: int) -> None:
        new_id = await api.create(f"bench-{index:05d}")
        if new_id is not None:
            created.append(new_id)

    with cpu_share(pid) as cpu:
        elapsed = await timed(gather_limited(SETUP_IMAGES, SETUP_CONCURRENCY, setup))
    api.results.add(
        f"Create {SETUP_IMAGES} images, {SETUP_CONCURRENCY} concurrent",
        f"{SETUP_IMAGES / elapsed:.0f} req/s",
        f"{elapsed:.1f} s; {cpu}",
    )
    if not created:
        raise RuntimeError("no image could be created")
    picker = random.Random(SEED)

    async def create_one(index: int) -> None:
        await api.create(f"bench-latency-{index}")

    async def show_one(_: int) -> None:
        await api.show(picker.choice(created))

    async def list_one(_: int) -> None:
        await api.list25()

    for label, action in (
        ("create", create_one),
        ("show", show_one),
        (f"list 25 of {SETUP_IMAGES}+", list_one),
    ):
        samples = await latencies(action, LATENCY_REQUESTS)
        api.results.add(
            f"Latency {label}",
            f"p50 {percentile(samples, 50):.1f} ms, p95 {percentile(samples, 95):.1f} ms",
            f"{LATENCY_REQUESTS} sequential requests",
        )
    return created


async def measure_concurrency(api: Api, pid: int, image_id: str) -> None:
    print("Concurrency", flush=True)
    api.results.group = CONCURRENCY

    async def hammer(_: int) -> None:
        await api.show(image_id)

    label = f"GET one image, {HAMMER_WORKERS} concurrent"
    await gather_limited(HAMMER_WORKERS * 2, HAMMER_WORKERS, hammer)  # open the connections
    with cpu_share(pid) as cpu:
        started = time.perf_counter()
        done = await gather_limited(
            HAMMER_REQUESTS, HAMMER_WORKERS, hammer, max_seconds=HAMMER_SECONDS
        )
        elapsed = time.perf_counter() - started
    api.results.add(label, f"{done / elapsed:.0f} req/s", f"httpx, {done} requests; {cpu}")

    # The same with a client that costs next to nothing, so the server has the cores.
    path = f"/v2/images/{image_id}"
    with cpu_share(pid) as cpu:
        done, failed, elapsed = await hammer_raw(
            api.base, path, HAMMER_REQUESTS, HAMMER_WORKERS, HAMMER_SECONDS
        )
    api.results.add(
        label + " (raw client)", f"{done / elapsed:.0f} req/s", f"{done} requests; {cpu}"
    )
    if failed:
        api.failures += failed
        api.results.errors.append(f"GET {path}: {failed} of {done} answers were not 200")
