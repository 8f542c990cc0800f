"""`glimpse-scrubber`: runs its cleanup jobs once, or every wakeup_time with --daemon;
--restore brings a pending_delete image back; --check is the daemon's health check."""

from __future__ import annotations

import argparse
import asyncio
import sys

from glimpse.cli.common import settings_or_exit
from glimpse_scrubber import health


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-scrubber", description=__doc__)
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--daemon", action="store_true", help="keep running, every wakeup_time")
    mode.add_argument(
        "--restore", metavar="IMAGE_ID", help="bring a pending_delete image back to active"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="health check of the daemon beside it: a complete pass (database reached) lately",
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    if args.check:
        return health.check(settings)
    # Imported here: the health check runs every few seconds and needs none of the jobs' stores.
    from glimpse_scrubber.main import run  # noqa: PLC0415

    return asyncio.run(run(settings, daemon=args.daemon, restore=args.restore))


if __name__ == "__main__":
    sys.exit(main())
