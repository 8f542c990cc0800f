"""`glimpse-scrubber`: runs its cleanup jobs once, or every wakeup_time with --daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from glimpse.cli.common import settings_or_exit
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse_scrubber.jobs import JOBS

log = logging.getLogger("glimpse_scrubber")


async def run_pass(database: Database, settings: Settings) -> None:
    for job in JOBS:
        await job(database, settings)


async def _daemon(database: Database, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    while not stop.is_set():
        try:
            await run_pass(database, settings)
        except Exception:
            # Pike: in daemon mode a failed pass is logged at CRITICAL and the daemon lives on.
            log.critical("scrubber pass failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.scrubber.wakeup_time)
        except TimeoutError:
            continue
    log.info("scrubber stopped")


async def _main(settings: Settings, *, daemon: bool) -> int:
    database = Database.from_settings(settings)
    try:
        if daemon:
            await _daemon(database, settings)
            return 0
        try:
            await run_pass(database, settings)
        except Exception:
            log.critical("scrubber pass failed", exc_info=True)
            return 1
        return 0
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-scrubber", description=__doc__)
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    parser.add_argument("--daemon", action="store_true", help="keep running, every wakeup_time")
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    return asyncio.run(_main(settings, daemon=args.daemon))


if __name__ == "__main__":
    sys.exit(main())
