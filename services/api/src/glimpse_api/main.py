"""`glimpse-api`: serve the Images API with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from glimpse.cli.common import prepare_multiprocess_metrics, settings_or_exit
from glimpse.config import ConfigError
from glimpse.config.loader import CONFIG_ENV
from glimpse_api.identity import refuse_unsafe_bind

# client_socket_timeout = 0: Glance waits for ever; uvicorn needs a number.
NO_TIMEOUT = 365 * 24 * 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-api", description=__doc__)
    parser.add_argument("--config-file", help=f"glance-api.conf style file (or ${CONFIG_ENV})")
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    try:
        refuse_unsafe_bind(settings)  # create_app checks again in each worker process
    except ConfigError as exc:
        print(f"glimpse-api: {exc}", file=sys.stderr)  # noqa: T201 -- start-up failure
        return 2
    # Every worker process counts in one directory; /metrics, on any of them, sums them all.
    prepare_multiprocess_metrics()
    if args.config_file:
        # Worker processes rebuild the settings from the environment.
        os.environ[CONFIG_ENV] = os.path.abspath(args.config_file)  # noqa: PTH100 -- a str for environ
    uvicorn.run(
        "glimpse_api.app:app_from_environment",
        factory=True,
        host=settings.bind_host,
        port=settings.bind_port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        # The peer address must stay the socket's: trusted_proxies is checked against it, and
        # X-Forwarded-For from a proxy would otherwise replace it.
        proxy_headers=False,
        # Requests in progress when it stops accepting may finish within this (None: all).
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout or None,
        timeout_keep_alive=settings.client_socket_timeout or NO_TIMEOUT,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
