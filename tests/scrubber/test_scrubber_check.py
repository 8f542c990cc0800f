"""`glimpse-scrubber --check`, the daemon's health check: healthy only after a complete pass
(which reached the database) and while passes keep completing."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from support import command, environment, stop, terminate

WAKEUP = 1


def scrubber_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return environment(
        GLIMPSE_DATABASE__CONNECTION=database_url,
        GLIMPSE_SCRUBBER__WAKEUP_TIME=str(WAKEUP),
        GLIMPSE_SCRUBBER__HEARTBEAT_FILE=str(tmp_path / "run" / "scrubber.heartbeat"),
        GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(tmp_path / "images"),
        GLIMPSE_CELERY__BROKER_DATA_DIR=str(tmp_path / "broker"),
    )


def check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("glimpse-scrubber"), "--check"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_follows_the_daemons_passes(tmp_path: Path) -> None:
    env = scrubber_env(tmp_path, f"sqlite:///{tmp_path / 'glimpse.sqlite'}")
    synced = subprocess.run(
        [command("glimpse-manage"), "db", "sync"], env=env, cwd=tmp_path, check=False, timeout=120
    )
    assert synced.returncode == 0

    before = check(env, tmp_path)
    assert before.returncode == 1
    assert "no pass completed yet" in before.stderr

    daemon = subprocess.Popen(
        [command("glimpse-scrubber"), "--daemon"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while (answer := check(env, tmp_path)).returncode != 0:
            assert daemon.poll() is None, "the daemon exited"
            assert time.monotonic() < deadline, answer.stderr
    finally:
        code, output = stop(daemon)
    assert code == 0, output

    # A daemon whose passes stopped completing: its heartbeat ages past 2 wakeups + 60 s.
    heartbeat = tmp_path / "run" / "scrubber.heartbeat"
    stale = time.time() - (2 * WAKEUP + 61)
    os.utime(heartbeat, (stale, stale))
    aged = check(env, tmp_path)
    assert aged.returncode == 1
    assert "the last complete pass ended" in aged.stderr

    heartbeat.touch()
    assert check(env, tmp_path).returncode == 0


def test_a_failing_pass_writes_no_heartbeat(tmp_path: Path) -> None:
    """The database unreachable from the start: passes fail, no heartbeat is ever written."""
    env = scrubber_env(tmp_path, "postgresql://glimpse@127.0.0.1:1/none")
    log = tmp_path / "scrubber.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [command("glimpse-scrubber"), "--daemon"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while log.read_text(errors="replace").count("scrubber pass failed") < 2:
            assert daemon.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
    finally:
        terminate(daemon)
    assert not (tmp_path / "run" / "scrubber.heartbeat").exists()
    answer = check(env, tmp_path)
    assert answer.returncode == 1
    assert "no pass completed yet" in answer.stderr
