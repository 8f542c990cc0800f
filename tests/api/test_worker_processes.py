"""glimpse-api with `workers` >= 2 as real processes on loopback: workers forked from the master,
each on its own SO_REUSEPORT socket, connections spread over them; SIGTERM (or Ctrl-C's SIGINT)
lets requests in progress finish; a killed worker is replaced, and so is one whose loop stops
beating; SIGHUP replaces them all; the workers never outlive the master; a port already served
refuses a second server."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from glimpse_api import supervisor
from support import command, environment, free_port
from topology import wait_for

START_WITHIN = 120.0  # a busy machine starts two workers slowly
REQUESTS_METRIC = "glimpse_api_requests_total"


class Api:
    """One glimpse-api (its own process group), its port and its metrics directory."""

    def __init__(self, tmp_path: Path, *, workers: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.metrics_dir = tmp_path / "metrics"
        self.metrics_dir.mkdir(exist_ok=True)
        self.log_path = tmp_path / f"api-{self.port}.log"
        self.config = tmp_path / "glance-api.conf"
        self.config.write_text(
            f"[DEFAULT]\nworkers = {workers}\nbind_host = {host}\nbind_port = {self.port}\n"
            "graceful_shutdown_timeout = 30\n"
            f"[database]\nconnection = sqlite:///{tmp_path / 'glimpse.sqlite'}\n"
            f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
            f"[os_glance_staging_store]\nfilesystem_store_datadir = {tmp_path / 'staging'}\n"
            f"[os_glance_tasks_store]\nfilesystem_store_datadir = {tmp_path / 'tasks'}\n"
        )
        self.env = environment(
            GLIMPSE_CONFIG=str(self.config), PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir)
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def migrate(self) -> None:
        synced = subprocess.run(
            [command("glimpse-manage"), "db", "sync"],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert synced.returncode == 0, synced.stdout + synced.stderr

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [command("glimpse-api")],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.process

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def workers(self) -> list[int]:
        return children(self.pid)

    def wait_serving(self, count: int) -> list[int]:
        """The workers' ids, once `count` of them exist and each has answered."""

        def ready() -> list[int] | None:
            assert self.process is not None
            assert self.process.poll() is None, self.log()
            pids = self.workers()
            if len(pids) != count:
                return None
            # Each worker starts serving on its own: ask until every one has counted a request.
            with contextlib.suppress(httpx.TransportError):
                for _ in range(4 * count):
                    httpx.get(f"{self.base}/versions", timeout=5)
            counted = requests_by_process(self.metrics_dir)
            return pids if all(counted.get(pid) for pid in pids) else None

        return wait_for("the workers to serve", ready, START_WITHIN)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    server = Api(tmp_path, workers=2)
    server.migrate()
    try:
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def requests_by_process(directory: Path) -> dict[int, float]:
    """Requests each process counted, from its own file of the multiprocess directory."""
    counted: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == REQUESTS_METRIC:
                counted[pid] = counted.get(pid, 0) + value
    return counted


def settled_counts(directory: Path) -> dict[int, float]:
    """requests_by_process once no count moves (a request is counted after its response)."""
    counts = requests_by_process(directory)
    while True:
        time.sleep(0.5)
        again = requests_by_process(directory)
        if again == counts:
            return counts
        counts = again


def get_on_new_connections(base: str, connections: int, each: int) -> list[int]:
    """`connections` connections opened at once, each sending `each` keep-alive GETs."""
    barrier = threading.Barrier(connections)

    def client(_: int) -> list[int]:
        with httpx.Client(base_url=base, timeout=30) as session:
            barrier.wait()
            return [session.get("/versions").status_code for _ in range(each)]

    with ThreadPoolExecutor(max_workers=connections) as pool:
        return [status for statuses in pool.map(client, range(connections)) for status in statuses]


def test_workers_are_forked_children_and_share_simultaneous_connections(api: Api) -> None:
    api.start()
    workers = api.wait_serving(2)
    master_command = Path(f"/proc/{api.pid}/cmdline").read_bytes()
    for pid in workers:
        # Forked, never spawned: a spawned worker runs `python -c "from multiprocessing..."`.
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == master_command
    before = settled_counts(api.metrics_dir)

    statuses = get_on_new_connections(api.base, connections=32, each=5)

    assert statuses == [200] * 160

    def counted() -> dict[int, float] | None:
        # A request is counted once its response has gone: the last ones a moment later.
        after = requests_by_process(api.metrics_dir)
        served = {pid: after.get(pid, 0) - before.get(pid, 0) for pid in workers}
        return served if sum(served.values()) == 160 else None

    served = wait_for("160 requests counted", counted, 10)
    # The kernel spreads connections over the workers' sockets: each gets a real share.
    assert min(served.values()) >= 160 * 0.15, served
    # /metrics, on whichever worker answers, sums what every worker counted.
    text = httpx.get(f"{api.base}/metrics", timeout=10).text
    versions = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(REQUESTS_METRIC) and 'route="/versions"' in line
    )
    # Every request so far was a GET /versions (the readiness probes, then these 160).
    assert versions == sum(before.values()) + 160


def to_master(api: Api, signum: int) -> None:
    os.kill(api.pid, signum)


def to_group(api: Api, signum: int) -> None:
    os.killpg(api.pid, signum)  # as Ctrl-C in a terminal: the workers get it too


@pytest.mark.parametrize(
    ("send", "signum"),
    [(to_master, signal.SIGTERM), (to_group, signal.SIGINT)],
    ids=["sigterm-to-master", "sigint-to-group"],
)
def test_a_stop_signal_lets_a_request_in_progress_finish_then_every_process_exits(
    api: Api, send: Callable[[Api, int], None], signum: int
) -> None:
    api.start()
    workers = api.wait_serving(2)
    created = httpx.post(
        f"{api.base}/v2/images",
        json={"name": "slow", "disk_format": "raw", "container_format": "bare"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    image = created.json()["id"]
    started = threading.Event()
    chunks = [b"x" * 65536] * 10

    def body() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            yield chunk
            if index == 0:
                started.set()
            time.sleep(0.3)

    def upload() -> int:
        connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
        try:
            connection.request(
                "PUT",
                f"/v2/images/{image}/file",
                body=body(),
                headers={"Content-Type": "application/octet-stream"},
                encode_chunked=True,
            )
            return connection.getresponse().status
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        uploading = pool.submit(upload)
        assert started.wait(30)
        time.sleep(0.5)  # the worker has taken the connection
        send(api, signum)
        assert uploading.result(timeout=60) == 204

    assert api.process is not None
    assert api.process.wait(timeout=60) == 0, api.log()
    assert not any(alive(pid) for pid in workers)
    assert f"{signal.Signals(signum).name}: stopping 2 workers" in api.log()
    # The port is free again: nothing of the tree listens any more (SO_REUSEADDR: past the
    # closed connections' TIME_WAIT, as a server restarting would).
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", api.port))
        probe.listen()


def test_a_killed_worker_is_replaced_and_its_siblings_keep_serving(api: Api) -> None:
    api.start()
    first, second = api.wait_serving(2)
    os.kill(first, signal.SIGKILL)

    def replaced() -> list[int] | None:
        pids = api.workers()
        return pids if len(pids) == 2 and first not in pids else None

    workers = wait_for("a new worker", replaced, START_WITHIN)
    assert second in workers
    assert api.wait_serving(2) == workers
    assert "died (signal SIGKILL): starting another" in api.log()


def test_a_worker_whose_loop_stops_is_killed_and_replaced(api: Api) -> None:
    api.start()
    first, second = api.wait_serving(2)
    os.kill(first, signal.SIGSTOP)  # its event loop stops beating, as a blocked loop would
    stopped_at = time.monotonic()

    def replaced() -> list[int] | None:
        pids = api.workers()
        return pids if len(pids) == 2 and first not in pids else None

    workers = wait_for("a new worker", replaced, supervisor.HEARTBEAT_TIMEOUT + START_WITHIN)
    # Not before its time: the last beat came at most a tick (a second) before the stop.
    assert time.monotonic() - stopped_at >= supervisor.HEARTBEAT_TIMEOUT - 2
    assert second in workers
    assert api.wait_serving(2) == workers
    log = api.log()
    assert f"worker [{first}] silent for" in log
    assert "died (signal SIGKILL): starting another" in log


def test_sighup_replaces_every_worker(api: Api) -> None:
    api.start()
    old = api.wait_serving(2)
    os.kill(api.pid, signal.SIGHUP)

    def replaced() -> list[int] | None:
        pids = api.workers()
        return pids if len(pids) == 2 and not set(pids) & set(old) else None

    new = wait_for("new workers", replaced, START_WITHIN)
    assert api.wait_serving(2) == new
    assert api.process is not None
    assert api.process.poll() is None
    # Each old worker was told to stop only once a new one's loop was running.
    stops = re.findall(r"worker \[(\d+)\] serves: worker \[(\d+)\] stops", api.log())
    assert sorted(int(successor) for successor, _ in stops) == sorted(new)
    assert sorted(int(retired) for _, retired in stops) == sorted(old)


def test_the_workers_sighup_starts_read_the_configuration_as_it_is_then(
    api: Api, tmp_path: Path
) -> None:
    # The master builds the first workers' application; after SIGHUP each new worker builds
    # its own from the file.
    disabled = tmp_path / "disabled"
    disabled.touch()
    api.start()
    old = api.wait_serving(2)
    assert httpx.get(f"{api.base}/healthcheck", timeout=10).status_code == 200
    with api.config.open("a") as config:
        config.write(f"[healthcheck]\ndisable_by_file_path = {disabled}\n")
    os.kill(api.pid, signal.SIGHUP)

    def replaced() -> list[int] | None:
        pids = api.workers()
        return pids if len(pids) == 2 and not set(pids) & set(old) else None

    wait_for("new workers", replaced, START_WITHIN)
    api.wait_serving(2)
    for _ in range(8):  # new connections, spread over both workers
        assert httpx.get(f"{api.base}/healthcheck", timeout=10).status_code == 503


def test_workers_stop_when_the_master_is_killed(api: Api) -> None:
    api.start()
    workers = api.wait_serving(2)
    os.kill(api.pid, signal.SIGKILL)
    assert api.process is not None
    api.process.wait(timeout=10)
    wait_for(
        "the orphaned workers to exit",
        lambda: True if not any(alive(pid) for pid in workers) else None,
        60,
    )


def test_a_second_server_on_a_served_port_stops_at_start(api: Api) -> None:
    api.start()
    api.wait_serving(2)
    other = subprocess.run(
        [command("glimpse-api")],
        check=False,
        env=api.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 3
    assert f"cannot listen on 127.0.0.1:{api.port}" in other.stderr
    assert "Address already in use" in other.stderr
    # The first one is untouched.
    assert httpx.get(f"{api.base}/versions", timeout=10).status_code == 200


def test_workers_serve_an_ipv6_address(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = Api(tmp_path, workers=2, host="::1")
    server.migrate()
    try:
        server.start()
        assert len(server.wait_serving(2)) == 2
    finally:
        server.stop()
