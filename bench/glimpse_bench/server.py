"""The Glimpse server under test, and the JSON calls made to it."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from glimpse_bench.clients import RawConnection, split_base
from glimpse_bench.common import HOST, WARMUP_REQUESTS, spawn, stop_process, tool
from glimpse_bench.results import Results

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


@dataclass
class GlimpseServer:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    # Defaults to a SQLite file in `workdir`; `settings` are more GLIMPSE_* variables.
    database_url: str | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "glimpse-api.log"

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None  # noqa: S101 -- only read while running
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        # The embedded defaults: nothing from a developer's GLIMPSE_* environment leaks in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("GLIMPSE_")}
        env.update(
            GLIMPSE_CONFIG="",
            GLIMPSE_BIND_PORT=str(self.port),
            GLIMPSE_DATABASE__CONNECTION=self.database_url
            or f"sqlite:///{self.workdir / 'bench.sqlite'}",
            GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(self.workdir / "images"),
            GLIMPSE_LOG_LEVEL="WARNING",
        )
        env.update(self.settings)
        return env

    def migrate(self) -> None:
        """glimpse-manage db sync: the schema the server runs on."""
        subprocess.run(
            [tool("glimpse-manage"), "db", "sync"],
            cwd=self.workdir,
            env=self.environment(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, *, migrate: bool = True) -> None:
        if migrate:
            self.migrate()
        env = self.environment()
        with self.log_path.open("wb") as log:
            self.proc = spawn(
                [tool("glimpse-api")],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, client: httpx.AsyncClient, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"glimpse-api exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                response = await client.get(f"{self.base}/versions")
                if response.status_code < 500:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"glimpse-api did not answer /versions in {within:.0f}s")

    def stop(self) -> None:
        stop_process(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        markers = ("ERROR", "CRITICAL", "Traceback")
        return [line for line in text.splitlines() if any(mark in line for mark in markers)]


class Api:
    """The JSON calls, on one httpx client; non-2xx answers are collected, not raised."""

    def __init__(self, base: str, client: httpx.AsyncClient, results: Results) -> None:
        self.base = base
        self.client = client
        self.results = results
        self.failures = 0

    def _check(self, response: httpx.Response, expected: int) -> bool:
        if response.status_code == expected:
            return True
        self.failures += 1
        if len(self.results.errors) < 10:
            request = response.request
            self.results.errors.append(
                f"{request.method} {request.url.path}: {response.status_code} "
                f"{response.text[:300]!r}"
            )
        return False

    async def create(self, name: str) -> str | None:
        response = await self.client.post(
            f"{self.base}/v2/images",
            json={"name": name, "disk_format": "raw", "container_format": "bare"},
        )
        if not self._check(response, 201):
            return None
        return str(response.json()["id"])

    async def show(self, image_id: str) -> bool:
        return self._check(await self.client.get(f"{self.base}/v2/images/{image_id}"), 200)

    async def list25(self) -> bool:
        return self._check(await self.client.get(f"{self.base}/v2/images?limit=25"), 200)


async def gather_limited(
    count: int,
    workers: int,
    job: Callable[[int], Awaitable[Any]],
    *,
    max_seconds: float | None = None,
) -> int:
    """Run job(0..count-1) on `workers` concurrent workers; stop early after `max_seconds`.

    Return how many jobs ran.
    """
    next_index = iter(range(count))
    stop = math.inf if max_seconds is None else time.perf_counter() + max_seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in next_index:
            if time.perf_counter() > stop:
                return
            await job(index)
            done += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


async def hammer_raw(
    base: str, path: str, count: int, workers: int, max_seconds: float
) -> tuple[int, int, float]:
    """GET `path` on `workers` keep-alive raw connections, `count` times in all or until
    `max_seconds` have passed; return (done, failed, seconds)."""
    host, port = split_base(base)
    connections = [await RawConnection.open(host, port) for _ in range(workers)]
    failed = 0

    async def get(conn: RawConnection) -> None:
        nonlocal failed
        await conn.send_head("GET", path, {})
        status, headers = await conn.read_status()
        await conn.read_body(headers)
        if status != 200:
            failed += 1

    try:
        await asyncio.gather(*(get(conn) for conn in connections))  # warm every connection
        failed = 0
        tickets = iter(range(count))
        stop = time.perf_counter() + max_seconds

        async def worker(conn: RawConnection) -> int:
            done = 0
            for _ in tickets:
                if time.perf_counter() > stop:
                    break
                await get(conn)
                done += 1
            return done

        started = time.perf_counter()
        done = sum(await asyncio.gather(*(worker(conn) for conn in connections)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()
    return done, failed, elapsed


async def latencies(action: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    for index in range(WARMUP_REQUESTS):
        await action(index)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        await action(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples
