"""`make bench BENCH=cluster`: the figures of `make cluster` through its balancer, with one
and with two API nodes, side by side: 64 concurrent GETs of an image's metadata and 8
concurrent 64 MiB uploads.

Each run starts its own cluster (scripts/cluster.py) on a fresh PostgreSQL database and a Redis
database of the machine's (BENCH_PG, BENCH_REDIS), and stops it after. On a machine with few
cores a second API node shares them with the first: the figures say what it adds there, and the
CPU seconds each process used say where the time went.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
GETS = 64
GET_ROUNDS = 20
UPLOADS = 8
UPLOAD_BYTES = 64 * 1024 * 1024
CHUNK = 1024 * 1024


def _cluster_module() -> Any:  # noqa: ANN401 -- a script loaded by path
    spec = importlib.util.spec_from_file_location("glimpse_cluster", ROOT / "scripts/cluster.py")
    if spec is None or spec.loader is None:
        raise SystemExit("scripts/cluster.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Figures:
    gets_per_second: float
    get_p99_ms: float
    upload_mib_per_second: float
    cpu: dict[str, float]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str) -> tuple[float, float, float]:
    async with httpx.AsyncClient(
        base_url=url, timeout=600, limits=httpx.Limits(max_connections=GETS)
    ) as client:
        created = await client.post(
            "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
        )
        image_id = created.json()["id"]
        latencies: list[float] = []

        async def get_loop() -> None:
            for _ in range(GET_ROUNDS):
                start = time.perf_counter()
                answer = await client.get(f"/v2/images/{image_id}")
                answer.raise_for_status()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(get_loop() for _ in range(GETS)))
        gets = GETS * GET_ROUNDS / (time.perf_counter() - start)
        p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000

        async def body() -> Any:  # noqa: ANN401 -- an async byte stream
            block = os.urandom(CHUNK)
            for _ in range(UPLOAD_BYTES // CHUNK):
                yield block

        async def upload() -> None:
            made = await client.post(
                "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
            )
            put = await client.put(
                f"/v2/images/{made.json()['id']}/file",
                content=body(),
                headers={"Content-Type": "application/octet-stream"},
            )
            put.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(upload() for _ in range(UPLOADS)))
        mib = UPLOADS * UPLOAD_BYTES / CHUNK / (time.perf_counter() - start)
    return gets, p99, mib


async def create_database() -> str:
    name = f"glimpse_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(PG)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(PG)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run(api_nodes: int) -> Figures:
    script = _cluster_module()
    name = asyncio.run(create_database())
    workdir = Path(tempfile.mkdtemp(prefix="glimpse-bench-cluster-"))
    database = PG.rsplit("/", 1)[0] + f"/{name}"
    conf = workdir / "glance-api.conf"
    conf.write_text(script.default_conf(workdir, database, REDIS))
    ports = [script.free_port() for _ in range(api_nodes)]
    cluster = script.Cluster(workdir, conf, script.free_port(), ports, workers=1, scrubbers=1)
    try:
        with script.running(cluster):
            before = {n: cpu_seconds(node.pid) for n, node in cluster.nodes.items()}
            gets, p99, mib = asyncio.run(measure(cluster.url))
            cpu = {n: cpu_seconds(node.pid) - before[n] for n, node in cluster.nodes.items()}
    finally:
        asyncio.run(drop_database(name))
        shutil.rmtree(workdir, ignore_errors=True)  # 512 MiB of uploads
    return Figures(gets, p99, mib, cpu)


def main() -> int:
    one, two = run(1), run(2)
    rows = [
        ("GET /v2/images/{id}, 64 clients (req/s)", one.gets_per_second, two.gets_per_second),
        ("GET p99 (ms)", one.get_p99_ms, two.get_p99_ms),
        (
            "8 concurrent 64 MiB uploads (MiB/s)",
            one.upload_mib_per_second,
            two.upload_mib_per_second,
        ),
    ]
    print(f"{'through the balancer':45} {'1 API node':>12} {'2 API nodes':>12}")
    for label, first, second in rows:
        print(f"{label:45} {first:12.1f} {second:12.1f}")
    print(f"CPU seconds by process (cores: {os.cpu_count()}):")
    for name in sorted(set(one.cpu) | set(two.cpu)):
        print(f"  {name:43} {one.cpu.get(name, 0.0):12.1f} {two.cpu.get(name, 0.0):12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
