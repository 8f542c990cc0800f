"""`make bench BENCH=scale`: list and show latency at 5,000 and at 1,000,000 images.

For SQLite and PostgreSQL each: a fresh database made by `glimpse-manage db sync`, seeded with
image rows (with members, properties, tags and locations) straight through the driver, then a
real glimpse-api on it; p50/p99 of list 25 (default sort, a name filter, sort=created_at:desc,
a marker 90% down the list) and of show, as a member of one project, then list 25 and show as
a member of a project that owns 20 images and sees few others. Prints a Markdown table with the
large/small ratio of each figure (the target: within 2x) and the seeding times.

Environment:
  BENCH_SCALE_ROWS       the large database's image rows (default 1000000)
  BENCH_SCALE_DATABASES  comma-separated, of SQLite and PostgreSQL (default both)
  BENCH_PG               a PostgreSQL database to connect to while creating and dropping the
                         scratch ones (default postgresql://postgres@127.0.0.1:5432/test)
  BENCH_SCALE_PORT       the port glimpse-api binds (default: any free one)
  BENCH_TIMEOUT          seconds after which the whole run gives up (default 3600)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from glimpse_bench.common import env_int
from glimpse_bench.scale import run_scale

DATABASES = ("SQLite", "PostgreSQL")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    large = env_int("BENCH_SCALE_ROWS", 1_000_000)
    admin_url = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    chosen = os.environ.get("BENCH_SCALE_DATABASES", ",".join(DATABASES)).split(",")
    databases = [name for name in DATABASES if name.lower() in {c.strip().lower() for c in chosen}]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-scale-") as workdir:
        try:
            work = run_scale(Path(workdir), large, admin_url, databases)
            text = asyncio.run(asyncio.wait_for(work, env_int("BENCH_TIMEOUT", 3600)))
        except subprocess.CalledProcessError as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            print(f"bench failed: {exc}\n{output.decode(errors='replace')}", file=sys.stderr)
            return 1
        except (RuntimeError, OSError, TimeoutError) as exc:
            print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    print()
    print(text)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
