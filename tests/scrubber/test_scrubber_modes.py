"""glimpse-scrubber's run-once and daemon semantics (Pike): CRITICAL on failure, exit codes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support import command, environment, free_port, stop


def scrubber(
    tmp_path: Path, database: str, *args: str, log: Path | None = None
) -> subprocess.Popen[str]:
    env = environment(GLIMPSE_DATABASE__CONNECTION=database, GLIMPSE_SCRUBBER__WAKEUP_TIME="1")
    output = log.open("w") if log is not None else subprocess.PIPE
    try:
        return subprocess.Popen(
            [command("glimpse-scrubber"), *args],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        if log is not None and not isinstance(output, int):
            output.close()


def unreachable_database() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/none"


def test_once_succeeds_with_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    sync = subprocess.run(
        [command("glimpse-manage"), "db", "sync"],
        env=environment(GLIMPSE_DATABASE__CONNECTION=url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    process = scrubber(tmp_path, url)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "CRITICAL" not in output


def test_once_exits_1_when_the_database_is_down(tmp_path: Path) -> None:
    process = scrubber(tmp_path, unreachable_database())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "CRITICAL" in output
    assert "scrubber pass failed" in output


def test_daemon_survives_a_database_outage(tmp_path: Path) -> None:
    log = tmp_path / "scrubber.log"
    process = scrubber(tmp_path, unreachable_database(), "--daemon", log=log)
    # Wait (bounded) for several failed passes at wakeup_time = 1.
    deadline = time.monotonic() + 60
    while log.read_text().count("CRITICAL") < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the daemon must keep running"
        time.sleep(0.2)
    assert process.poll() is None, "the daemon must keep running"
    code, _ = stop(process)
    assert code == 0, log.read_text()
    assert log.read_text().count("CRITICAL") >= 3
