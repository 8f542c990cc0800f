"""Phase: machine bounds (hashing, disk, loopback) and upload/download throughput."""

from __future__ import annotations

from pathlib import Path

from glimpse_bench.clients import BulkClient, choose_client, download_rate, timed
from glimpse_bench.common import (
    CHOICE_MIB,
    DOWNLOAD_RUNS,
    MACHINE,
    MB,
    THROUGHPUT,
    CpuShare,
    MiB,
    cpu_share,
)
from glimpse_bench.results import Figures, Results, disk_rate
from glimpse_bench.server import Api


async def measure_bounds(
    workdir: Path, image_size: int, loop_base: str, results: Results, figures: Figures
) -> tuple[BulkClient, BulkClient]:
    """Hashing (first pass), disk; return the bulk clients chosen on the loopback server."""
    print("Machine bounds", flush=True)
    results.group = MACHINE
    figures.measure_hashing(image_size)
    disk = disk_rate(workdir, image_size)
    results.add("Disk write + fsync (informational)", f"{disk:.0f} MB/s", "same size as the image")
    choice_size = min(CHOICE_MIB * MiB, image_size)
    return await choose_client(loop_base, results, choice_size)


async def measure_throughput(
    api: Api,
    pid: int,
    clients: tuple[BulkClient, BulkClient],
    *,
    loop_base: str,
    image_size: int,
    figures: Figures,
) -> None:
    """Upload, then the downloads from Glimpse and from the loopback server in turns, so both
    see the same machine; hashing is measured a second time right after the upload."""
    print("Throughput", flush=True)
    results = api.results
    results.group = THROUGHPUT
    down_client, up_client = clients
    image_id = await api.create("bench-big")
    if image_id is None:
        raise RuntimeError("could not create the benchmark image")
    path = f"/v2/images/{image_id}/file"
    with cpu_share(pid) as cpu:
        elapsed = await timed(up_client.upload(api.base, path, image_size))
    figures.upload = image_size / elapsed / MB
    results.add("Upload", f"{figures.upload:.0f} MB/s", f"{up_client.name}; {cpu}")

    figures.measure_hashing(min(image_size, CHOICE_MIB * MiB))
    slower = "md5" if figures.md5 <= figures.sha512 else "sha512"
    results.add(
        "Hashing bound (one core)",
        f"{figures.hash_bound:.0f} MB/s",
        f"md5 {figures.md5:.0f}, sha512 {figures.sha512:.0f} MB/s per CPU second, "
        f"best of 2 passes; bound is {slower}",
        group=MACHINE,
    )

    best_cpu = CpuShare()
    for _ in range(DOWNLOAD_RUNS):
        rate = await download_rate(down_client, loop_base, f"/{image_size}", image_size)
        figures.ceiling = max(figures.ceiling, rate)
        with cpu_share(pid) as cpu:
            rate = await download_rate(down_client, api.base, path, image_size)
        if rate > figures.download:
            figures.download, best_cpu = rate, cpu
    results.add(
        "Loopback ceiling (download)",
        f"{figures.ceiling:.0f} MB/s",
        f"{down_client.name}, best of {DOWNLOAD_RUNS}, in turns with Glimpse",
        group=MACHINE,
    )
    results.add(
        "Download",
        f"{figures.download:.0f} MB/s",
        f"{down_client.name}, best of {DOWNLOAD_RUNS}; {best_cpu}",
    )
