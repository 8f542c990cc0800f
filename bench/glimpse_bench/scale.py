"""`BENCH=scale`: list and show latency at 5,000 and at 1,000,000 images, SQLite and PostgreSQL.

Each database is made fresh by `glimpse-manage db sync`, seeded straight through the driver
(glimpse_bench.scale_seed), and served by a real glimpse-api with identity headers from
loopback (auth_strategy=trusted-proxy), so the requests are a project member's: visibility
and membership are checked as for any user, not waved through as for an admin. Most figures
are VIEWER's (a project owning a fifth of the images); the last two are LONELY's, a project
that sees its few images and the rare public ones, so its list must find a page's rows far
apart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import asyncpg
import httpx

from glimpse_bench.common import env_int, free_port
from glimpse_bench.results import markdown, percentile
from glimpse_bench.scale_seed import (
    COMMON_NAME,
    LONELY,
    LONELY_IMAGES,
    VIEWER,
    Seeded,
    seed_postgresql,
    seed_sqlite,
)
from glimpse_bench.server import GlimpseServer

if TYPE_CHECKING:
    from pathlib import Path

SMALL: Final = 5_000
HEADERS: Final = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "bench-user",
    "X-Roles": "member,reader",
}
MAX_SAMPLES: Final = 200
MIN_SAMPLES: Final = 10
SECONDS_PER_FIGURE: Final = 15.0  # a slow figure stops after this (at least MIN_SAMPLES)
WARMUP: Final = 5


@dataclass(frozen=True)
class Figure:
    p50: float
    p99: float
    samples: int


# label -> (database, rows) -> figure
Table = dict[str, dict[tuple[str, int], Figure]]


def requests(seeded: Seeded) -> dict[str, tuple[str, list[str]]]:
    """The project asking and the paths each figure cycles through."""
    listing = "/v2/images?limit=25"
    lonely = f"(a project owning {LONELY_IMAGES})"
    return {
        "list 25, default sort": (VIEWER, [listing]),
        "list 25, name filter": (VIEWER, [f"{listing}&name={COMMON_NAME}"]),
        "list 25, sort=created_at:desc": (VIEWER, [f"{listing}&sort=created_at:desc"]),
        "list 25, marker 90% deep": (VIEWER, [f"{listing}&marker={seeded.marker}"]),
        "show": (VIEWER, [f"/v2/images/{image_id}" for image_id in seeded.shown]),
        f"list 25, default sort {lonely}": (LONELY, [listing]),
        f"show {lonely}": (LONELY, [f"/v2/images/{image_id}" for image_id in seeded.lonely]),
    }


async def measure_paths(client: httpx.AsyncClient, project: str, paths: list[str]) -> Figure:
    headers = {"X-Project-Id": project}
    for index in range(WARMUP):
        (await client.get(paths[index % len(paths)], headers=headers)).raise_for_status()
    samples: list[float] = []
    stop = time.perf_counter() + SECONDS_PER_FIGURE
    while len(samples) < MAX_SAMPLES and (len(samples) < MIN_SAMPLES or time.perf_counter() < stop):
        path = paths[len(samples) % len(paths)]
        started = time.perf_counter()
        answer = await client.get(path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        if path.startswith("/v2/images?") and len(answer.json()["images"]) != 25:
            raise RuntimeError(f"GET {path}: not a full page of 25")
    return Figure(percentile(samples, 50), percentile(samples, 99), len(samples))


async def measure_server(server: GlimpseServer, seeded: Seeded) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    server.start(migrate=False)
    try:
        async with httpx.AsyncClient(base_url=server.base, headers=HEADERS, timeout=120) as client:
            await server.wait_ready(client, within=300)
            for label, (project, paths) in requests(seeded).items():
                figures[label] = figure = await measure_paths(client, project, paths)
                print(
                    f"    {label}: p50 {figure.p50:.1f} ms, p99 {figure.p99:.1f} ms "
                    f"({figure.samples} requests)",
                    flush=True,
                )
    finally:
        server.stop()
        if problems := server.log_problems():
            print("\n".join(problems[:10]), flush=True)
    return figures


def _port() -> int:
    """BENCH_SCALE_PORT when given (a run that must keep to its ports), else any free one."""
    return env_int("BENCH_SCALE_PORT", 0) or free_port()


def _settings() -> dict[str, str]:
    return {"GLIMPSE_AUTH_STRATEGY": "trusted-proxy"}


async def sqlite_figures(workdir: Path, rows: int) -> tuple[Seeded, dict[str, Figure]]:
    directory = workdir / f"sqlite-{rows}"
    directory.mkdir()
    path = directory / "bench.sqlite"
    server = GlimpseServer(
        directory, _port(), database_url=f"sqlite:///{path}", settings=_settings()
    )
    server.migrate()
    seeded = await asyncio.to_thread(seed_sqlite, path, rows)
    print(f"  SQLite, {rows:,} images seeded in {seeded.seconds:.1f} s", flush=True)
    try:
        return seeded, await measure_server(server, seeded)
    finally:
        path.unlink(missing_ok=True)


async def postgresql_figures(
    workdir: Path, rows: int, admin_url: str
) -> tuple[Seeded, dict[str, Figure]]:
    directory = workdir / f"postgresql-{rows}"
    directory.mkdir()
    name = f"glimpse_bench_scale_{uuid.uuid4().hex[:8]}"
    base, _, _ = admin_url.rpartition("/")
    url = f"{base}/{name}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            server = GlimpseServer(directory, _port(), database_url=url, settings=_settings())
            server.migrate()
            seeded = await seed_postgresql(url, rows)
            print(f"  PostgreSQL, {rows:,} images seeded in {seeded.seconds:.1f} s", flush=True)
            return seeded, await measure_server(server, seeded)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_scale(workdir: Path, large: int, admin_url: str, databases: list[str]) -> str:
    """Measure every database at SMALL and `large` rows; return the Markdown report."""
    table: Table = {}
    seeding: list[tuple[str, ...]] = []
    for database in databases:
        for rows in (SMALL, large):
            print(f"{database}, {rows:,} images", flush=True)
            if database == "SQLite":
                seeded, figures = await sqlite_figures(workdir, rows)
            else:
                seeded, figures = await postgresql_figures(workdir, rows, admin_url)
            seeding.append((database, f"{rows:,}", f"{seeded.seconds:.1f} s"))
            for label, figure in figures.items():
                table.setdefault(label, {})[database, rows] = figure
    return report(table, seeding, large, databases)


def report(table: Table, seeding: list[tuple[str, ...]], large: int, databases: list[str]) -> str:
    header = ("Request", "Database", "p50 5k", f"p50 {large:,}", "ratio", "p99 5k")
    header += (f"p99 {large:,}", "ratio", "within 2x")
    rows: list[tuple[str, ...]] = []
    for label, by_database in table.items():
        for database in databases:
            small, big = by_database[database, SMALL], by_database[database, large]
            p50_ratio, p99_ratio = big.p50 / small.p50, big.p99 / small.p99
            flat = "yes" if max(p50_ratio, p99_ratio) <= 2 else "NO"
            rows.append(
                (
                    label,
                    database,
                    f"{small.p50:.1f} ms",
                    f"{big.p50:.1f} ms",
                    f"{p50_ratio:.2f}",
                    f"{small.p99:.1f} ms",
                    f"{big.p99:.1f} ms",
                    f"{p99_ratio:.2f}",
                    flat,
                )
            )
    return "\n\n".join(
        [
            (
                f"## Glimpse at scale: {SMALL:,} vs {large:,} images (a member of {VIEWER}, "
                f"or of {LONELY} where said)"
            ),
            markdown(header, rows),
            "## Seeding",
            markdown(("Database", "Images", "Seconds"), seeding),
        ]
    )
