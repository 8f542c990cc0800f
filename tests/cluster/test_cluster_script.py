"""`make cluster` as an operator runs it (scripts/cluster.py): ready through its balancer,
a process that dies is started again, SIGHUP rolls the API nodes, SIGTERM stops everything."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import ROOT, free_port
from topology import wait_for

pytestmark = pytest.mark.cluster


@contextlib.contextmanager
def make_cluster(
    tmp_path: Path, database: str, broker: str, port: int
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    output = tmp_path / "cluster.out"
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "cluster.py"),
        f"--workdir={tmp_path / 'cluster'}",
        f"--port={port}",
        f"--api-ports={free_port()},{free_port()}",
        "--workers=1",
        "--scrubbers=1",
        f"--database-url={database}",
        f"--broker-url={broker}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process, output
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_make_cluster_serves_restarts_rolls_and_stops(
    tmp_path: Path, cluster_database: str, cluster_broker: str
) -> None:
    port = free_port()
    with make_cluster(tmp_path, cluster_database, cluster_broker, port) as (process, output):

        def said(pattern: str) -> re.Match[str] | None:
            assert process.poll() is None, output.read_text()
            return re.search(pattern, output.read_text())

        wait_for("the cluster to be ready", lambda: said(r"cluster: ready at "))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert client.get("/healthcheck").text == "OK"
            assert client.get("/v2/images").json()["images"] == []

            worker = wait_for("the worker's pid", lambda: said(r"worker-1 pid (\d+)"))
            os.killpg(int(worker.group(1)), signal.SIGKILL)  # its pool too
            wait_for("the worker to start again", lambda: said(r"worker-1 exited; starting"))

            process.send_signal(signal.SIGHUP)
            wait_for("both API nodes rolled", lambda: said(r"rolling api-2"))
            # The roll ends once api-2 is back in the balancer: then it serves as before.
            assert client.get("/v2/images").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    text = output.read_text()
    assert "cluster: stopped" in text
    workdir = tmp_path / "cluster"
    assert "SIGTERM: draining" in (workdir / "api-1.log").read_text()
    for pid in re.findall(r"pid (\d+)", text):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
