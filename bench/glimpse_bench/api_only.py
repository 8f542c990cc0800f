"""Phase `--api`: the metadata paths alone, as deployed (two API processes, trusted-proxy
identity, SQLite): p50/p99 and server CPU per request of create, show, list 25, and GET of one
image by 64 concurrent keep-alive connections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from glimpse_bench.clients import RawConnection, split_base
from glimpse_bench.common import (
    CONCURRENCY,
    HAMMER_SECONDS,
    HAMMER_WORKERS,
    LATENCY,
    LATENCY_REQUESTS,
    SETUP_CONCURRENCY,
    SETUP_IMAGES,
    free_port,
)
from glimpse_bench.results import Results, percentile
from glimpse_bench.server import Api, GlimpseServer, gather_limited, latencies

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

API_WORKERS: Final = 2
HAMMER_TOTAL: Final = 20_000
# What an authenticating proxy forwards for a project member.
IDENTITY: Final = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "bench-project",
    "X-User-Id": "bench-user",
    "X-Roles": "member,reader",
}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (uvicorn's workers)."""
    from glimpse_bench.common import cpu_seconds  # noqa: PLC0415 -- beside its siblings

    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


async def _per_request(
    pid: int, count: int, run: Callable[[], Awaitable[object]]
) -> tuple[object, float]:
    """What run() returns, and the server's CPU milliseconds per request over it."""
    before = tree_cpu_seconds(pid)
    value = await run()
    return value, (tree_cpu_seconds(pid) - before) * 1000 / max(count, 1)


async def _hammer(base: str, path: str) -> tuple[int, int, float, list[float]]:
    """GET `path` on HAMMER_WORKERS keep-alive connections; (done, failed, seconds, ms each)."""
    host, port = split_base(base)
    connections = [await RawConnection.open(host, port) for _ in range(HAMMER_WORKERS)]
    samples: list[float] = []
    failed = 0

    async def get(conn: RawConnection) -> None:
        nonlocal failed
        started = time.perf_counter()
        await conn.send_head("GET", path, IDENTITY)
        status, headers = await conn.read_status()
        await conn.read_body(headers)
        samples.append((time.perf_counter() - started) * 1000)
        failed += status != 200

    try:
        for _ in range(3):  # warm every connection and both processes
            await asyncio.gather(*(get(conn) for conn in connections))
        samples.clear()
        failed = 0
        tickets = iter(range(HAMMER_TOTAL))
        stop = time.perf_counter() + HAMMER_SECONDS

        async def worker(conn: RawConnection) -> None:
            for _ in tickets:
                if time.perf_counter() > stop:
                    return
                await get(conn)

        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in connections))
        elapsed = time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()
    return len(samples), failed, elapsed, samples


async def api_only(workdir: Path) -> Results:
    results = Results()
    server = GlimpseServer(
        workdir,
        free_port(),
        settings={
            "GLIMPSE_WORKERS": str(API_WORKERS),
            "GLIMPSE_AUTH_STRATEGY": "trusted-proxy",
            "GLIMPSE_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    print(f"API metadata paths: {API_WORKERS} server processes, trusted-proxy, SQLite", flush=True)
    server.start()
    try:
        async with httpx.AsyncClient(timeout=60.0, headers=IDENTITY) as client:
            await server.wait_ready(client)
            api = Api(server.base, client, results)
            pid = server.pid
            results.group = LATENCY
            created: list[str] = []

            async def setup(index: int) -> None:
                if (new_id := await api.create(f"bench-{index:05d}")) is not None:
                    created.append(new_id)

            _, cpu = await _per_request(
                pid, SETUP_IMAGES, lambda: gather_limited(SETUP_IMAGES, SETUP_CONCURRENCY, setup)
            )
            results.add(
                f"Create {SETUP_IMAGES} images, {SETUP_CONCURRENCY} concurrent",
                f"{cpu:.2f} ms server CPU/request",
            )
            if not created:
                raise RuntimeError("no image could be created")
            target = created[len(created) // 2]

            async def create_one(index: int) -> None:
                await api.create(f"bench-latency-{index}")

            async def show_one(_: int) -> None:
                await api.show(target)

            async def list_one(_: int) -> None:
                await api.list25()

            for label, action in (
                ("create", create_one),
                ("show", show_one),
                (f"list 25 of {SETUP_IMAGES}+", list_one),
            ):
                samples, cpu = await _per_request(
                    pid, LATENCY_REQUESTS, lambda a=action: latencies(a, LATENCY_REQUESTS)
                )
                assert isinstance(samples, list)  # noqa: S101 -- latencies' list
                results.add(
                    f"Latency {label}",
                    f"p50 {percentile(samples, 50):.1f} ms, p99 {percentile(samples, 99):.1f} ms",
                    f"{LATENCY_REQUESTS} sequential; {cpu:.2f} ms server CPU/request",
                )

            results.group = CONCURRENCY
            before = tree_cpu_seconds(pid)
            done, failed, elapsed, samples = await _hammer(server.base, f"/v2/images/{target}")
            cpu = (tree_cpu_seconds(pid) - before) * 1000 / max(done, 1)
            results.add(
                f"GET one image, {HAMMER_WORKERS} concurrent (raw client)",
                f"{done / elapsed:.0f} req/s, p50 {percentile(samples, 50):.1f} ms, "
                f"p99 {percentile(samples, 99):.1f} ms",
                f"{done} requests; {cpu:.2f} ms server CPU/request",
            )
            if failed or api.failures:
                results.errors.append(f"{failed + api.failures} answers were not the expected")
    finally:
        server.stop()
        results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])
    return results
