"""Log lines of the real processes: every record formats (Celery's and billiard's own handlers
included), and `[DEFAULT] debug = true` is honoured by the API, the worker and the scrubber."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx

from topology import Topology, shared_sections, topology, wait_for


def conf(workdir: Path, *default: str) -> list[str]:
    """The embedded topology (SQLite, the filesystem:// broker): no server needed."""
    sections = shared_sections(workdir, f"sqlite:///{workdir / 'glimpse.sqlite'}", "filesystem://")
    return ["[DEFAULT]", *default, *sections, f"broker_data_dir = {workdir / 'broker'}"]


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_ready(topo: Topology) -> bool | None:
    return "ready." in topo.log("glimpse-worker") or None


def test_the_pool_process_exit_line_formats(tmp_path: Path) -> None:
    """billiard reports a pool process that died through its own logger, whose handler Celery
    gives the worker's format: the line must carry `[- - -]`, not fail with KeyError (which
    Celery's redirected stderr then logged as "--- Logging error ---")."""
    # The last section is [celery]: pool processes, not the default threads.
    with topology(tmp_path, [*conf(tmp_path), "worker_pool = prefork"]) as topo:
        synced = topo.run("glimpse-manage", "db", "sync")
        assert synced.returncode == 0, synced.stderr
        worker = topo.start_worker()
        wait_for("the worker to be ready", lambda: worker_ready(topo))
        [child] = wait_for("a pool process", lambda: pool_children(worker.pid) or None)
        os.kill(child, signal.SIGKILL)
        exited = re.compile(
            rf" ERROR \S+ \[- - -\] Process 'ForkPoolWorker-\d+' pid:{child} exited with "
            r"'signal 9 \(SIGKILL\)'"
        )
        wait_for(
            "the pool process's exit to be logged",
            lambda: exited.search(topo.log("glimpse-worker")) or None,
        )
        log = topo.log("glimpse-worker")
        assert "Logging error" not in log
        assert "KeyError" not in log


def test_debug_is_honoured_by_api_worker_and_scrubber(tmp_path: Path) -> None:
    with (
        topology(tmp_path, conf(tmp_path, "debug = true")) as topo,
        httpx.Client(base_url=topo.url, timeout=30) as client,
    ):
        topo.start_api()
        assert client.get("/v2/images").status_code == 200
        # The request's own debug line, with its request id.
        request_line = re.compile(r" DEBUG glimpse_api\.deps \[req-[0-9a-f-]+ .*\] GET /v2/images")
        wait_for("the API's debug line", lambda: request_line.search(topo.log("glimpse-api")))
        topo.start("glimpse-worker")  # no --loglevel: the config decides
        wait_for("the worker to be ready", lambda: worker_ready(topo))
        assert re.search(r" DEBUG celery\.\S+ \[- - -\] ", topo.log("glimpse-worker"))
        scrubbed = topo.run("glimpse-scrubber")
        assert scrubbed.returncode == 0, scrubbed.stderr
        assert "DEBUG glimpse_scrubber [- - -] running scrub_deleted_data" in scrubbed.stderr
        for name in ("glimpse-api", "glimpse-worker"):
            assert "Ignoring unknown option [DEFAULT] debug" not in topo.log(name)
        assert "Ignoring unknown option [DEFAULT] debug" not in scrubbed.stderr


def test_without_debug_nothing_is_logged_at_debug(tmp_path: Path) -> None:
    with topology(tmp_path, conf(tmp_path, "debug = false")) as topo:
        synced = topo.run("glimpse-manage", "db", "sync")
        assert synced.returncode == 0, synced.stderr
        scrubbed = topo.run("glimpse-scrubber")
        assert scrubbed.returncode == 0, scrubbed.stderr
        assert " DEBUG " not in scrubbed.stderr
        assert " INFO " in synced.stderr + scrubbed.stderr  # it does log, at INFO
