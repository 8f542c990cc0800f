"""`glimpse-api`: serve the Images API with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from glimpse.cli.common import settings_or_exit
from glimpse.config.settings import CONFIG_ENV

log = logging.getLogger("glimpse_api")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-api", description=__doc__)
    parser.add_argument("--config-file", help=f"glance-api.conf style file (or ${CONFIG_ENV})")
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    if settings.auth_strategy == "noauth" and not settings.binds_loopback:
        if not settings.noauth_allow_public_bind:
            print(  # noqa: T201 -- start-up failure
                f"glimpse-api: auth_strategy=noauth refuses to listen on {settings.bind_host}; "
                "bind to loopback, choose another auth_strategy, or set "
                "noauth_allow_public_bind = true",
                file=sys.stderr,
            )
            return 2
        log.warning("auth_strategy=noauth on %s: every caller is admin", settings.bind_host)
    if args.config_file:
        # Worker processes rebuild the settings from the environment.
        os.environ[CONFIG_ENV] = os.path.abspath(args.config_file)  # noqa: PTH100
    uvicorn.run(
        "glimpse_api.app:app_from_environment",
        factory=True,
        host=settings.bind_host,
        port=settings.bind_port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
