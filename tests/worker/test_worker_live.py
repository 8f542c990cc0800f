"""A real glimpse-worker process consuming from the Redis broker on this machine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from glimpse.config import load_settings
from glimpse.jobs import names
from support import celery_caller, command, environment, stop


def test_worker_answers_over_redis(redis_db: str, tmp_path: Path) -> None:
    env = environment(
        GLIMPSE_CELERY__BROKER_URL=redis_db,
        GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{tmp_path / 'w.sqlite'}",
        GLIMPSE_CELERY__WORKER_CONCURRENCY="1",
    )
    worker = subprocess.Popen(
        [command("glimpse-worker"), "--loglevel=WARNING"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        settings = load_settings(None, celery={"broker_url": redis_db})
        with celery_caller(settings) as client:
            reply = client.send_task(names.PING).get(timeout=60)
        assert reply["pid"] != os.getpid()
        assert isinstance(reply["host"], str)
        assert reply["host"]
    finally:
        code, output = stop(worker)
        assert code == 0, output


def test_ping_health_check_answers_only_while_this_hosts_worker_runs(
    redis_db: str, tmp_path: Path
) -> None:
    env = environment(
        GLIMPSE_CELERY__BROKER_URL=redis_db,
        GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{tmp_path / 'w.sqlite'}",
        GLIMPSE_CELERY__WORKER_CONCURRENCY="1",
    )

    def ping() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command("glimpse-worker"), "--ping"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    before = ping()
    assert before.returncode == 1
    assert "did not answer" in before.stderr
    worker = subprocess.Popen(
        [command("glimpse-worker"), "--loglevel=WARNING"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while (answer := ping()).returncode != 0:
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, answer.stderr
    finally:
        code, output = stop(worker)
    assert code == 0, output
    after = ping()
    assert after.returncode == 1
    assert "did not answer" in after.stderr
