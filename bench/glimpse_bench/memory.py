"""Phase: the server's memory under concurrent uploads."""

from __future__ import annotations

import asyncio

from glimpse_bench.clients import BulkClient, timed
from glimpse_bench.common import (
    CONCURRENT_UPLOADS,
    MB,
    MEMORY,
    RSS_INTERVAL,
    MiB,
    RssSampler,
    cpu_share,
    hwm_bytes,
    reset_peak_rss,
    rss_bytes,
)
from glimpse_bench.results import Figures
from glimpse_bench.server import Api


async def measure_memory(
    api: Api, pid: int, up_client: BulkClient, size: int, figures: Figures
) -> None:
    print("Memory", flush=True)
    api.results.group = MEMORY
    ids = [await api.create(f"bench-concurrent-{n}") for n in range(CONCURRENT_UPLOADS)]
    if None in ids:
        raise RuntimeError("could not create the concurrent upload images")
    await asyncio.sleep(0.5)
    before = rss_bytes(pid)
    hwm_reset = reset_peak_rss(pid)
    with RssSampler(pid) as sampler, cpu_share(pid) as cpu:
        elapsed = await timed(
            asyncio.gather(*(up_client.upload(api.base, f"/v2/images/{i}/file", size) for i in ids))
        )
    hwm = hwm_bytes(pid) if hwm_reset else 0
    peak = max(sampler.peak, before)
    figures.rss_growth = peak - before
    results = api.results
    results.add("Server RSS before concurrent uploads", f"{before / MiB:.0f} MiB")
    results.add(
        f"Server RSS peak, {CONCURRENT_UPLOADS} x {size // MiB} MiB uploads",
        f"{peak / MiB:.0f} MiB",
        f"{sampler.samples} samples every {RSS_INTERVAL * 1000:.0f} ms"
        + (f"; VmHWM {hwm / MiB:.0f} MiB" if hwm else ""),
    )
    aggregate = CONCURRENT_UPLOADS * size / elapsed / MB
    results.add("Concurrent upload aggregate", f"{aggregate:.0f} MB/s", f"{up_client.name}; {cpu}")
