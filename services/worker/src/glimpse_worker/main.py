"""`glimpse-worker`: a Celery worker for import, conversion and copy jobs."""

from __future__ import annotations

import argparse
import sys

from glimpse.cli.common import prepare_multiprocess_metrics, settings_or_exit
from glimpse.config import ConfigError
from glimpse.logs import log_level
from glimpse.malloc_tuning import limit_malloc_retention
from glimpse_worker.health import node_name, ping


def main(argv: list[str] | None = None) -> int:
    limit_malloc_retention()
    parser = argparse.ArgumentParser(prog="glimpse-worker", description=__doc__)
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    parser.add_argument(
        "--loglevel",
        help="default: DEBUG with [DEFAULT] debug = true, else $GLIMPSE_LOG_LEVEL or INFO",
    )
    parser.add_argument(
        "--ping",
        action="store_true",
        help="health check: exit 0 if the worker of this host answers through the broker",
    )
    parser.add_argument(
        "--hostname",
        metavar="NAME",
        help="node name of this worker (default celery@<host name>); give each worker on one "
        "host its own, and --ping the same",
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(parser.prog, args.config_file)
    node = args.hostname or node_name()
    if args.ping:
        return ping(settings, node)
    # Pool processes count in one directory the metrics server reads (before any import of
    # prometheus_client).
    prepare_multiprocess_metrics()
    # Imported here: the health check runs every few seconds and needs none of the pipelines.
    from glimpse_worker import observe, plugins  # noqa: PLC0415 -- as said above
    from glimpse_worker.celery_app import create_celery  # noqa: PLC0415 -- as above

    try:
        plugins.load(settings.image_import_opts.image_import_plugins)
    except ConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)  # noqa: T201 -- start-up failure
        return 2
    app = create_celery(settings)
    observe.serve(settings)
    # Celery's worker itself, not its command line (app.worker_main), whose click interface
    # imports an interactive shell's libraries (prompt_toolkit, about 20 MiB).
    worker = app.Worker(
        hostname=node,
        loglevel=args.loglevel or log_level(debug=settings.debug),
        pool_cls=settings.celery.worker_pool,
        concurrency=settings.celery.worker_concurrency,
        without_gossip=True,
        without_mingle=True,
    )
    worker.start()
    # Not worker.exitcode, as app.worker_main did not: Celery stopped by Ctrl-C says 1.
    return 0


if __name__ == "__main__":
    sys.exit(main())
