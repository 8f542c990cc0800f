"""`glimpse-scrubber`: runs its cleanup jobs once, or every wakeup_time with --daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from glimpse.cli.common import settings_or_exit
from glimpse.config import Settings
from glimpse_scrubber.jobs import JOBS, ScrubberRuntime

log = logging.getLogger("glimpse_scrubber")


async def run_pass(runtime: ScrubberRuntime) -> None:
    for job in JOBS:
        log.debug("running %s", job.__name__)
        await job(runtime)


async def _daemon(runtime: ScrubberRuntime) -> None:
    settings = runtime.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    while not stop.is_set():
        try:
            await run_pass(runtime)
        except Exception:
            # Pike: in daemon mode a failed pass is logged at CRITICAL and the daemon lives on.
            log.critical("scrubber pass failed", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.scrubber.wakeup_time)
        except TimeoutError:
            continue
    log.info("scrubber stopped")


async def _restore(runtime: ScrubberRuntime, image_id: str) -> int:
    refusal = await runtime.deletion.restore(image_id)
    if refusal is not None:
        log.error("cannot restore: %s", refusal)
        return 1
    log.info("image %s restored to active", image_id)
    return 0


async def _main(settings: Settings, *, daemon: bool, restore: str | None) -> int:
    runtime = ScrubberRuntime.build(settings)
    try:
        if restore is not None:
            return await _restore(runtime, restore)
        if daemon:
            await _daemon(runtime)
            return 0
        try:
            await run_pass(runtime)
        except Exception:
            log.critical("scrubber pass failed", exc_info=True)
            return 1
        return 0
    finally:
        await runtime.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-scrubber", description=__doc__)
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--daemon",
        action="store_true",
        default=None,
        help="keep running, a pass every wakeup_time (default: [DEFAULT] daemon)",
    )
    mode.add_argument(
        "--nodaemon", dest="daemon", action="store_false", help="one pass, whatever daemon says"
    )
    parser.add_argument(
        "--restore", metavar="IMAGE_ID", help="bring a pending_delete image back to active"
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    daemon = settings.daemon if args.daemon is None else args.daemon
    if daemon and args.restore is not None:
        # As Glance's scrubber: a restore is one action, not a daemon's.
        print(  # noqa: T201 -- usage error
            f"{parser.prog}: --restore cannot run as a daemon (daemon is set); add --nodaemon",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_main(settings, daemon=daemon, restore=args.restore))


if __name__ == "__main__":
    sys.exit(main())
