"""`glimpse-scrubber`: runs its cleanup jobs once, or every wakeup_time as a daemon (--daemon,
or `daemon = true` in the config, as glance-scrubber.conf says it); --restore brings a
pending_delete image back; --check is the daemon's health check."""

from __future__ import annotations

import argparse
import asyncio
import sys

from glimpse.cli.common import settings_or_exit
from glimpse.malloc_tuning import limit_malloc_retention
from glimpse_scrubber import health


def main(argv: list[str] | None = None) -> int:
    limit_malloc_retention()
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
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--restore", metavar="IMAGE_ID", help="bring a pending_delete image back to active"
    )
    action.add_argument(
        "--check",
        action="store_true",
        help="health check of the daemon beside it: a complete pass (database reached) lately",
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    if args.check:
        return health.check(settings)
    daemon = settings.daemon if args.daemon is None else args.daemon
    if daemon and args.restore is not None:
        # As Glance's scrubber: a restore is one action, not a daemon's.
        print(  # noqa: T201 -- usage error
            f"{parser.prog}: --restore cannot run as a daemon (daemon is set); add --nodaemon",
            file=sys.stderr,
        )
        return 2
    # Imported here: the health check runs every few seconds and needs none of the jobs' stores.
    from glimpse_scrubber.main import run  # noqa: PLC0415 -- as said above

    return asyncio.run(run(settings, daemon=daemon, restore=args.restore))


if __name__ == "__main__":
    sys.exit(main())
