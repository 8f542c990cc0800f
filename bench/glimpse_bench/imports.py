"""Phase `--import`: a plain upload against an interoperable import (a real glimpse-worker)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from glimpse_bench.clients import BulkClient, HttpxClient, timed
from glimpse_bench.common import (
    IMPORT,
    MB,
    MiB,
    cpu_share,
    free_port,
    rss_bytes,
    spawn,
    stop_process,
    tool,
)
from glimpse_bench.results import Figures, Results
from glimpse_bench.server import Api, GlimpseServer

if TYPE_CHECKING:
    from collections.abc import Iterator


IMPORT_POLL: Final = 0.2  # seconds between looks at an importing image


def pool_children(pid: int) -> list[int]:
    """The worker's pool processes (Linux), whose memory the import uses."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


@contextlib.contextmanager
def glimpse_worker(server: GlimpseServer) -> Iterator[subprocess.Popen[bytes]]:
    """One glimpse-worker (one pool process) on the server's database, stores and broker."""
    log_path = server.workdir / "glimpse-worker.log"
    with log_path.open("wb") as log:
        proc = spawn(
            [tool("glimpse-worker"), "--loglevel=WARNING"],
            cwd=server.workdir,
            env={**server.environment(), "GLIMPSE_CELERY__WORKER_CONCURRENCY": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop_process(proc)


async def measure_import(
    api: Api, server: GlimpseServer, up_client: BulkClient, image_size: int, figures: Figures
) -> None:
    """The import of the image (stage + POST /import, then a real worker until active), next to
    the plain upload of the same bytes measured in Throughput."""
    print("Import", flush=True)
    results = api.results
    results.group = IMPORT
    image_id = await api.create("bench-import")
    if image_id is None:
        raise RuntimeError("could not create the import image")
    with glimpse_worker(server) as worker:
        started = time.perf_counter()
        with cpu_share(server.pid) as stage_cpu:
            await up_client.upload(api.base, f"/v2/images/{image_id}/stage", image_size)
        staged = time.perf_counter()
        response = await api.client.post(
            f"{api.base}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /import: {response.status_code} {response.text[:300]}")
        peak, status = 0, "importing"
        while status == "importing":
            await asyncio.sleep(IMPORT_POLL)
            for child in pool_children(worker.pid):
                with contextlib.suppress(OSError):
                    peak = max(peak, rss_bytes(child))
            if worker.poll() is not None:
                raise RuntimeError(f"glimpse-worker exited with {worker.returncode}")
            image = (await api.client.get(f"{api.base}/v2/images/{image_id}")).json()
            status = image["status"]
        done = time.perf_counter()
    if status != "active" or image["size"] != image_size:
        raise RuntimeError(f"import ended {status} with size {image.get('size')}")
    total = image_size / (done - started) / MB
    results.add(
        "Plain upload of the same image",
        f"{figures.upload:.0f} MB/s",
        f"{image_size / figures.upload / MB:.1f} s" if figures.upload else "",
    )
    results.add(
        "Import: stage + import via a real worker until active",
        f"{total:.0f} MB/s",
        f"{done - started:.1f} s = stage {staged - started:.1f} s ({stage_cpu}) "
        f"+ import until active {done - staged:.1f} s",
    )
    if peak:
        results.add("Worker pool process RSS peak during the import", f"{peak / MiB:.0f} MiB")


async def import_only(workdir: Path, image_size: int) -> Results:
    """The plain upload and the import of the same image, and nothing else."""
    results = Results()
    figures = Figures()
    server = GlimpseServer(workdir, free_port())
    up_client = HttpxClient()
    try:
        server.start()
        async with httpx.AsyncClient(timeout=60.0) as client:
            await server.wait_ready(client)
            api = Api(server.base, client, results)
            image_id = await api.create("bench-plain")
            if image_id is None:
                raise RuntimeError("could not create the benchmark image")
            elapsed = await timed(
                up_client.upload(api.base, f"/v2/images/{image_id}/file", image_size)
            )
            figures.upload = image_size / elapsed / MB
            await measure_import(api, server, up_client, image_size, figures)
    finally:
        server.stop()
        await up_client.aclose()
        results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])
    return results
