"""`make tempest`: OpenStack tempest's image API tests against Glimpse with a real Keystone.

Installs Keystone (tests/keystone/requirements.txt plus gunicorn) and tempest (requirements.txt
here) into virtualenvs under .cache/tempest/, starts Keystone, Redis, a loopback web server and
Glimpse (API, worker, scrubber) on a fresh PostgreSQL database, registers Glimpse in Keystone's
catalog, runs `tempest run --regex '^tempest\\.api\\.image'`, prints the summary and compares it
with expected-pass-<profile>.txt. Everything it started is stopped, whatever happened.

Exit status: 0 when every expected test passed and none failed, 1 otherwise, 2 when the run
could not be set up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import glimpse_service
import keystone_service
import report
import tempest_run
import venvs
from processes import HarnessError, Supervisor

HERE = Path(__file__).resolve().parent
WORKDIR = venvs.CACHE / "run"  # logs and state of the latest run, kept until the next one
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def say(line: str) -> None:
    print(line, flush=True)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/tempest/run.py", description=__doc__)
    parser.add_argument("--profile", choices=sorted(glimpse_service.PROFILES), default="default")
    parser.add_argument("--regex", default=r"^tempest\.api\.image")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEMPEST_POSTGRES", DEFAULT_POSTGRES),
        help="server URL (no database); a fresh database is made there and dropped after",
    )
    args = parser.parse_args()
    profile = glimpse_service.PROFILES[args.profile]
    expected = report.expected_passing(HERE / f"expected-pass-{profile.name}.txt")
    signal.signal(signal.SIGTERM, _stop_on_signal)
    started = time.monotonic()

    keystone_bin = venvs.ensure_venv("keystone", venvs.KEYSTONE_REQUIREMENTS, say)
    tempest_bin = venvs.ensure_venv("tempest", venvs.TEMPEST_REQUIREMENTS, say)
    shutil.rmtree(WORKDIR, ignore_errors=True)
    (WORKDIR / "logs").mkdir(parents=True)
    supervisor = Supervisor(WORKDIR / "logs")
    database = f"glimpse_tempest_{os.getpid()}"
    database_made = False
    try:
        say(f"profile {profile.name}; logs in {WORKDIR.relative_to(venvs.ROOT)}/logs")
        identity = keystone_service.start(keystone_bin, WORKDIR / "keystone", supervisor)
        database_url = glimpse_service.create_database(args.postgres, database)
        database_made = True
        service = glimpse_service.start(WORKDIR, profile, identity, database_url, supervisor)
        keystone_service.populate(identity, service.url, service.remote_url)
        setup_time = time.monotonic() - started
        say(f"keystone {identity.url}, glimpse {service.url}; set-up took {setup_time:.0f} s")
        tests_started = time.monotonic()
        results = tempest_run.run(
            tempest_bin,
            workdir=WORKDIR,
            keystone=identity,
            glimpse=service,
            profile=profile,
            regex=args.regex,
            concurrency=args.concurrency,
        )
        say(f"tempest took {time.monotonic() - tests_started:.0f} s\n")
        supervisor.check_alive()
    except HarnessError as exc:
        say(f"tempest run could not be set up: {exc}")
        return 2
    except KeyboardInterrupt as exc:
        say(f"interrupted ({exc}): stopping everything")
        return 130
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all(say)
        if database_made:
            try:
                glimpse_service.drop_database(args.postgres, database)
            except HarnessError as exc:
                say(f"could not drop database {database}: {exc}")
    verdict = report.judge(
        results, expected if args.regex == parser.get_default("regex") else set()
    )
    report.summary(results, verdict, say)
    say(f"\nwhole run: {time.monotonic() - started:.0f} s; {'OK' if verdict.ok else 'FAILED'}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
