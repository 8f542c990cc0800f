"""The whole run: every phase in order, then the verdicts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from glimpse_bench.cache import measure_cache
from glimpse_bench.clients import BulkClient
from glimpse_bench.common import (
    CONCURRENT_UPLOADS,
    DOWNLOAD_TARGET,
    HAMMER_WORKERS,
    MEMORY,
    OTHER_CPU_WARNING,
    RSS_GROWTH_LIMIT,
    RUN,
    UPLOAD_TARGET,
    MiB,
    cpu_share,
    free_port,
    rss_bytes,
)
from glimpse_bench.drivers import measure_drivers
from glimpse_bench.imports import measure_import
from glimpse_bench.latency import measure_concurrency, measure_latency
from glimpse_bench.loopback import loopback_server
from glimpse_bench.memory import measure_memory
from glimpse_bench.results import Figures, Results, verdict
from glimpse_bench.server import Api, GlimpseServer
from glimpse_bench.throughput import measure_bounds, measure_throughput


async def run(
    workdir: Path, image_size: int, concurrent_size: int, driver_size: int, storm_size: int
) -> Results:
    results = Results()
    figures = Figures()
    print(
        f"Glimpse benchmark: image {image_size // MiB} MiB, "
        f"{CONCURRENT_UPLOADS} x {concurrent_size // MiB} MiB concurrent uploads, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    load_at_start = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    results.add("Load average at start", load_at_start, "1, 5, 15 min", group=RUN)
    server = GlimpseServer(workdir, free_port())
    limits = httpx.Limits(max_connections=HAMMER_WORKERS, max_keepalive_connections=HAMMER_WORKERS)
    clients: tuple[BulkClient, ...] = ()
    try:
        with loopback_server(image_size) as loop_base:
            clients = await measure_bounds(workdir, image_size, loop_base, results, figures)
            server.start()
            async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
                await server.wait_ready(client)
                api = Api(server.base, client, results)
                pid = server.pid
                rss = f"{rss_bytes(pid) / MiB:.0f} MiB"
                results.add("Server RSS at start", rss, f"pid {pid}", group=MEMORY)
                with cpu_share(pid) as cpu:
                    await measure_throughput(
                        api,
                        pid,
                        clients,
                        loop_base=loop_base,
                        image_size=image_size,
                        figures=figures,
                    )
                    await measure_import(api, server, clients[1], image_size, figures)
                    await measure_memory(api, pid, clients[1], concurrent_size, figures)
                    created = await measure_latency(api, pid)
                    await measure_concurrency(api, pid, created[0])
        results.group = RUN
        results.add("CPU over all server phases", f"{cpu.server:.0f}% server", str(cpu))
        if cpu.other > OTHER_CPU_WARNING:
            results.notes.append(
                f"Other processes used {cpu.other:.0f}% of a core on average while the "
                f"server was measured (load average at start {load_at_start}): the figures "
                "are lower and noisier than on an idle machine."
            )
        if api.failures:
            results.add("Failed API requests", str(api.failures), "see the errors below")
    except BaseException:
        if server.proc is not None and (code := server.proc.poll()) is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            print(f"glimpse-api {how} during the run", file=sys.stderr)
        server.stop()
        if tail := server.log_tail():
            print(f"glimpse-api log (last lines):\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])
        for bulk in clients:
            await bulk.aclose()

    await measure_drivers(workdir, driver_size, results)
    await measure_cache(workdir, image_size, storm_size, results)
    results.verdicts = [
        verdict("Download vs loopback ceiling", figures.download, figures.ceiling, DOWNLOAD_TARGET),
        verdict("Upload vs hashing bound", figures.upload, figures.hash_bound, UPLOAD_TARGET),
        (
            "RSS growth, concurrent uploads",
            f"{figures.rss_growth / MiB:.0f} MiB",
            "-",
            "-",
            f"< {RSS_GROWTH_LIMIT // MiB} MiB",
            "PASS" if figures.rss_growth < RSS_GROWTH_LIMIT else "MISS",
        ),
    ]
    return results
