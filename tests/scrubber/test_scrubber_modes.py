"""glimpse-scrubber's run-once and daemon semantics (Pike): CRITICAL on failure, exit codes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from relay import relay_to
from support import command, environment, free_port, stop

OCTET = {"Content-Type": "application/octet-stream"}


def scrubber(
    tmp_path: Path, database: str, *args: str, log: Path | None = None, **env_vars: str
) -> subprocess.Popen[str]:
    env = environment(
        GLIMPSE_DATABASE__CONNECTION=database, GLIMPSE_SCRUBBER__WAKEUP_TIME="1", **env_vars
    )
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


async def wait_until(what: str, probe: Callable[[], bool], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.2)


def gone(path: Path) -> bool:
    return not path.exists()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
async def test_daemon_resumes_its_work_when_the_database_returns(
    tmp_path: Path, database_url: str, make_settings: Any, client_for: Any
) -> None:
    """PostgreSQL is running, goes away under the daemon, and comes back: the daemon logs
    CRITICAL meanwhile, keeps running, and then deletes what was left to it."""
    settings: Settings = make_settings(delayed_delete=True, scrub_time=0)
    client = await client_for(settings)
    datadir = settings.store_datadir("file")
    url = sa.engine.make_url(database_url)
    assert url.host is not None
    assert url.port is not None

    async def deleted_image() -> Path:
        body = {"disk_format": "raw", "container_format": "bare"}
        image_id = (await client.post("/v2/images", json=body)).json()["id"]
        put = await client.put(f"/v2/images/{image_id}/file", content=b"data", headers=OCTET)
        assert put.status_code == 204
        assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
        assert (datadir / image_id).exists()
        return datadir / image_id

    log = tmp_path / "scrubber.log"
    with relay_to(url.host, url.port) as pg:
        process = scrubber(
            tmp_path,
            url.set(port=pg.port).render_as_string(hide_password=False),
            "--daemon",
            log=log,
            GLIMPSE_DELAYED_DELETE="true",
            GLIMPSE_SCRUB_TIME="0",
            GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(datadir),
        )
        try:
            await wait_until("the first image to be scrubbed", partial(gone, await deleted_image()))
            pg.down()
            left_for_later = await deleted_image()  # the API still reaches PostgreSQL

            def failed_passes() -> bool:
                assert process.poll() is None, log.read_text()
                return log.read_text().count("CRITICAL") >= 2

            await wait_until("failed passes", failed_passes)
            assert left_for_later.exists()
            pg.up()
            await wait_until("the daemon to scrub again", partial(gone, left_for_later))
            assert process.poll() is None
        finally:
            code, _ = stop(process)
    assert code == 0, log.read_text()
    assert "scrubber pass failed" in log.read_text()
