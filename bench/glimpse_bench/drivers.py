"""Phase `--drivers`: the store drivers (file, and s3 on moto) in this process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from glimpse_bench.common import (
    DRIVERS,
    HOST,
    MB,
    MiB,
    cpu_share,
    free_port,
    spawn,
    stop_process,
    stream_pattern,
)
from glimpse_bench.results import Results

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def moto_server(log_path: Path | None = None) -> Iterator[tuple[str, int]]:
    """moto's S3 server in its own process: (endpoint, pid). With `log_path`, its request log
    (one line per request) goes there."""
    port = free_port()
    with contextlib.ExitStack() as files:
        log = files.enter_context(log_path.open("wb")) if log_path else subprocess.DEVNULL
        proc = spawn(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
        )
    endpoint = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=2.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer within 60 s") from None
                time.sleep(0.1)
        yield endpoint, proc.pid
    finally:
        stop_process(proc)


async def measure_drivers(workdir: Path, size: int, results: Results) -> None:
    """Put and get of one object through each store driver, called directly in this process:
    the file driver on the bench's temporary directory, the s3 driver (default part sizes)
    against moto's S3 server on loopback, so s3 figures are bound by moto, not by S3."""
    from glimpse.stores.base import StoreDriver, StoreError  # noqa: PLC0415 -- only here
    from glimpse.stores.filesystem import FilesystemStore  # noqa: PLC0415 -- this phase only
    from glimpse.stores.s3 import S3Config, S3Store  # noqa: PLC0415 -- this phase only

    print(f"Store drivers ({size // MiB} MiB object)", flush=True)
    results.group = DRIVERS
    with moto_server() as (endpoint, moto_pid):
        drivers: dict[str, StoreDriver] = {
            "file": FilesystemStore("bench-file", workdir / "driver-file"),
            "s3 (moto)": S3Store(
                "bench-s3",
                S3Config(
                    endpoint_url=endpoint,
                    bucket="bench",
                    access_key="bench",
                    secret_key="bench",  # noqa: S106 -- moto takes any key
                    create_bucket=True,
                    addressing_style="path",
                ),
            ),
        }
        for label, driver in drivers.items():
            try:
                with cpu_share(moto_pid) as put_cpu:
                    started = time.perf_counter()
                    stored = await driver.put("bench-object", stream_pattern(size))
                    put_elapsed = time.perf_counter() - started
                with cpu_share(moto_pid) as get_cpu:
                    started = time.perf_counter()
                    received = 0
                    async for chunk in driver.get(stored.location):
                        received += len(chunk)
                    get_elapsed = time.perf_counter() - started
                if received != size:
                    raise RuntimeError(f"{label}: read {received} bytes, expected {size}")
                await driver.delete(stored.location)
            except StoreError as exc:
                raise RuntimeError(f"{label}: {exc}") from exc
            finally:
                await driver.aclose()
            for verb, elapsed, cpu in (
                ("put", put_elapsed, put_cpu),
                ("get", get_elapsed, get_cpu),
            ):
                notes = f"CPU: bench {cpu.bench:.0f}%"
                if label.startswith("s3"):
                    notes += f", moto {cpu.server:.0f}%"
                results.add(f"Driver {label} {verb}", f"{size / elapsed / MB:.0f} MB/s", notes)


async def drivers_only(workdir: Path, size: int) -> Results:
    results = Results()
    await measure_drivers(workdir, size, results)
    return results
