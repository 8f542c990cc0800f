"""`glimpse-api`: serve the Images API with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from glimpse.cli.common import prepare_multiprocess_metrics, settings_or_exit
from glimpse.config import ConfigError, Settings
from glimpse.config.loader import CONFIG_ENV
from glimpse.malloc_tuning import limit_malloc_retention
from glimpse_api.http_protocol import LargeBodyConnection
from glimpse_api.identity import refuse_unsafe_bind

if TYPE_CHECKING:
    from fastapi import FastAPI

# client_socket_timeout = 0: Glance waits for ever; uvicorn needs a number.
NO_TIMEOUT = 365 * 24 * 3600
APP: Final = "glimpse_api.app:app_from_environment"
# What the workers import before they fork (shared copy-on-write): the application and the
# server parts uvicorn would otherwise load in each worker.
PRELOAD: Final = (
    "glimpse_api.app",
    # The job publisher imports celery on its first send; imported here, the workers share it.
    "celery",
    "uvicorn.loops.auto",
    # What each worker would otherwise import as it starts or serves: the event loop uvicorn's
    # "auto" picks, the runtime of FastAPI's lifespan, celery's events (the job publisher's).
    "uvicorn.loops.uvloop",
    "fastapi.telemetry._runtime",
    "celery.app.events",
    "uvicorn.protocols.http.auto",
    "glimpse_api.http_protocol",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
)

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    limit_malloc_retention()
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
    if settings.workers == 1:
        options = server_options(settings)
        uvicorn.run(APP, host=settings.bind_host, port=settings.bind_port, **options)
        return 0
    return serve_workers(settings)


def serve_workers(settings: Settings) -> int:
    """`workers` processes forked from this one, each on its own socket (glimpse_api.supervisor)."""
    # After prepare_multiprocess_metrics: prometheus_client chooses how to count when imported.
    from glimpse_api import supervisor  # noqa: PLC0415

    try:
        port = supervisor.check_address_free(settings.bind_host, settings.bind_port)
    except supervisor.AddressInUseError as exc:
        log.error("%s", exc.strerror)  # noqa: TRY400 -- the reason is all
        return STARTUP_FAILURE
    supervisor.preload(PRELOAD)
    _import_configured_drivers(settings)
    from glimpse_api.app import app_from_environment  # noqa: PLC0415 -- preloaded just above

    prebuilt = _PrebuiltApp(app_from_environment())

    def make_config() -> uvicorn.Config:
        options = server_options(settings)
        if prebuilt.app is not None:
            options["factory"] = False
        return uvicorn.Config(prebuilt.app or APP, host=settings.bind_host, port=port, **options)

    return supervisor.Supervisor(
        make_config, settings.bind_host, port, settings.workers, on_reload=prebuilt.forget
    ).run()


@dataclass
class _PrebuiltApp:
    """The application the master builds (not started: its lifespan opens the runtime in each
    worker) before it forks: the workers share its pages instead of building one each.

    After SIGHUP each new worker builds its own from the configuration as it is then."""

    app: FastAPI | None

    def forget(self) -> None:
        self.app = None


def _import_configured_drivers(settings: Settings) -> None:
    """The store and database drivers the workers will load, imported (never connected) in the
    master so that they are shared too."""
    from glimpse.db.engine import import_driver  # noqa: PLC0415 -- after the metrics directory
    from glimpse.stores.registry import load_drivers  # noqa: PLC0415 -- likewise

    try:
        load_drivers(settings)
        import_driver(settings.database.connection)
    except (ValueError, ImportError):
        return  # each worker reports it as it builds its runtime, as without this


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options, whether one process serves or several."""
    return {
        "factory": True,
        # Request bodies in large messages, a response's head and body in one write
        # (glimpse_api.http_protocol).
        "http": LargeBodyConnection,
        "log_config": None,
        "access_log": False,
        # The peer address must stay the socket's: trusted_proxies is checked against it, and
        # X-Forwarded-For from a proxy would otherwise replace it.
        "proxy_headers": False,
        # Requests in progress when it stops accepting may finish within this (None: all).
        "timeout_graceful_shutdown": settings.graceful_shutdown_timeout or None,
        "timeout_keep_alive": settings.client_socket_timeout or NO_TIMEOUT,
    }


if __name__ == "__main__":
    sys.exit(main())
