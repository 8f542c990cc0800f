"""`glimpse-worker`: a Celery worker for import, conversion and copy jobs."""

from __future__ import annotations

import argparse
import sys

from glimpse.config import ConfigError, load_settings
from glimpse.logs import setup_logging
from glimpse_worker.celery_app import create_celery


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-worker", description=__doc__)
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        settings = load_settings(args.config_file)
    except ConfigError as exc:
        print(f"glimpse-worker: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    app = create_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--loglevel={args.loglevel}",
            f"--concurrency={settings.celery.worker_concurrency}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
