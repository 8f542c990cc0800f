"""Glimpse benchmark: throughput, latency and memory of a real API server on this machine.

Starts `glimpse-api` on the embedded default (SQLite, file store, noauth) in a temporary
directory, drives it over loopback and prints a Markdown table with the figures, the bounds of
this machine (loopback ceiling, hashing throughput) and a verdict per target. A benchmark, not a
test: the exit code is 0 whatever the verdicts (1 only when the run itself fails).

Environment:
  BENCH_IMAGE_MIB       size of the single upload/download image (default 1024)
  BENCH_CONCURRENT_MIB  size of each of the 8 concurrent uploads (default 256)
  BENCH_DRIVER_MIB      size of the object each store driver puts and gets (default 256)
  BENCH_STORM_MIB       size of the image 32 clients download at once, cold (default 64)
  BENCH_TIMEOUT         seconds after which the whole run gives up (default 900)

`--cache` measures only the image cache: a download of the image from an s3 store (moto) cold
and warm, and 32 concurrent cold downloads of one image (wall time and store reads).
`--drivers` measures only the store drivers (file, and s3 against a moto server the bench
starts), in this process, without the API server. `--api` measures only the metadata paths
(create, show, list 25, 64 concurrent GETs) with two server processes and trusted-proxy
identity, with the server's CPU per request. `--import` measures only the plain upload of
the image and its interoperable import (stage, then a real glimpse-worker until active).

MB is 10**6 bytes throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from glimpse_bench.api_only import api_only
from glimpse_bench.cache import cache_only
from glimpse_bench.clients import TransferError
from glimpse_bench.common import MiB, env_int
from glimpse_bench.drivers import drivers_only
from glimpse_bench.imports import import_only
from glimpse_bench.loopback import serve_loopback
from glimpse_bench.results import report
from glimpse_bench.suite import run

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loopback-server", type=int, metavar="BYTES", help=argparse.SUPPRESS)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--drivers", action="store_true", help="measure only the store drivers")
    only.add_argument(
        "--import", dest="import_", action="store_true", help="measure only upload vs import"
    )
    only.add_argument("--cache", action="store_true", help="measure only the image cache")
    only.add_argument("--api", action="store_true", help="measure only the metadata paths")
    args = parser.parse_args(argv)
    loop_factory = _loop_factory()
    if args.loopback_server is not None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve_loopback(args.loopback_server, lifetime=900))
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    image_size = env_int("BENCH_IMAGE_MIB", 1024) * MiB
    concurrent_size = env_int("BENCH_CONCURRENT_MIB", 256) * MiB
    driver_size = env_int("BENCH_DRIVER_MIB", 256) * MiB
    storm_size = env_int("BENCH_STORM_MIB", 64) * MiB
    timeout = env_int("BENCH_TIMEOUT", 900)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as workdir:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                if args.drivers:
                    work = drivers_only(Path(workdir), driver_size)
                elif args.import_:
                    work = import_only(Path(workdir), image_size)
                elif args.api:
                    work = api_only(Path(workdir))
                elif args.cache:
                    work = cache_only(Path(workdir), image_size, storm_size)
                else:
                    work = run(Path(workdir), image_size, concurrent_size, driver_size, storm_size)
                results = runner.run(asyncio.wait_for(work, timeout))
        except (
            RuntimeError,
            TransferError,
            OSError,
            httpx.HTTPError,
            TimeoutError,
            subprocess.TimeoutExpired,
        ) as exc:
            print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            print(f"bench failed: {exc}\n{output.decode(errors='replace')}", file=sys.stderr)
            return 1
    report(results)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (uvicorn serves on it too), else asyncio's default loop."""
    try:
        import uvloop  # noqa: PLC0415 -- optional
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


if __name__ == "__main__":
    sys.exit(main())
