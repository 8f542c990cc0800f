"""`make cluster`: the production topology as local processes, all on loopback.

HAProxy (Debian's package) on the public port balances two glimpse-api nodes, each on a port
of its own and health-checked on /healthcheck; two glimpse-worker nodes take import jobs from
the broker and two glimpse-scrubber daemons share the pending deletions. Every process reads
the same glance-api.conf (PostgreSQL and Redis or RabbitMQ: several processes need a database
and a broker servers share); what differs per process comes from its environment.

The supervisor starts a process again when it exits (as `restart: unless-stopped` does), rolls
the API nodes on SIGHUP (each drained, stopped and started again in turn) and stops everything
on SIGINT or SIGTERM, the API nodes first, each drained. Tests import `Cluster` to start the
same topology and stop, kill and restart its nodes one by one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import FrameType
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_WITHIN = 120.0  # seconds; a poll limit on a busy machine, not a promise of speed
STOP_WITHIN = 90.0
# The balancer's checks: a node is out after two failed checks (a check every second, every
# half second once one failed), back after two good ones. A node under load may take a few
# seconds to answer one: that is not a failure. An API node's drain outlasts the time to fail.
CHECK_INTERVAL_MS = 1000
DRAIN_SECONDS = 4.0
T = TypeVar("T")

# The balancer's configuration, filled in with str.format.
HAPROXY_TEMPLATE = Path(__file__).with_name("cluster-haproxy.cfg.in")


def wait_for(what: str, probe: Callable[[], T | None], within: float = START_WITHIN) -> T:
    """Poll `probe` until it returns something other than None; AssertionError past `within`."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            msg = f"gave up waiting for {what} after {within:.0f} s"
            raise AssertionError(msg)
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 3) -> int | None:
    """The status of GET `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


@dataclass
class Node:
    """One process of the cluster: its command, its own environment, its log file."""

    name: str
    kind: str  # api, worker, scrubber or balancer
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # an API node's
    metrics_port: int | None = None  # a worker's or a scrubber's GET /metrics
    process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        port = self.port if self.kind == "api" else self.metrics_port
        return f"http://127.0.0.1:{port}/metrics"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None  # noqa: S101 -- started
        return self.process.pid


@dataclass
class Cluster:
    """The processes of one cluster, all reading `conf`, their files under `workdir`."""

    workdir: Path
    conf: Path
    port: int
    api_ports: list[int]
    workers: int = 2
    scrubbers: int = 2
    drain_delay: float = DRAIN_SECONDS
    nodes: dict[str, Node] = field(default_factory=dict)
    _sockdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="glc-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_socket(self) -> Path:
        # A unix socket path is at most 107 bytes: kept short, outside the work directory.
        return self._sockdir / "haproxy.sock"

    def node_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
        env.update(GLIMPSE_CONFIG=str(self.conf), **overrides)
        return env

    def plan(self) -> None:
        """The nodes and the balancer's configuration, nothing started."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        run = self.workdir / "run"
        run.mkdir(exist_ok=True)
        servers = []
        for index, api_port in enumerate(self.api_ports, 1):
            name = f"api-{index}"
            servers.append(f"    server {name} 127.0.0.1:{api_port}")
            self.nodes[name] = Node(
                name,
                "api",
                [str(BIN / "glimpse-api")],
                self.node_env(
                    GLIMPSE_BIND_HOST="127.0.0.1",
                    GLIMPSE_BIND_PORT=str(api_port),
                    GLIMPSE_HEALTHCHECK__DISABLE_BY_FILE_PATH=str(run / f"{name}.disabled"),
                    GLIMPSE_HEALTHCHECK__DRAIN_DELAY=str(self.drain_delay),
                ),
                port=api_port,
            )
        for index in range(1, self.workers + 1):
            name = f"worker-{index}"
            metrics_port = free_port()
            self.nodes[name] = Node(
                name,
                "worker",
                [str(BIN / "glimpse-worker"), f"--hostname={name}@cluster"],
                self.node_env(GLIMPSE_METRICS__PORT=str(metrics_port)),
                metrics_port=metrics_port,
            )
        for index in range(1, self.scrubbers + 1):
            name = f"scrubber-{index}"
            metrics_port = free_port()
            self.nodes[name] = Node(
                name,
                "scrubber",
                [str(BIN / "glimpse-scrubber"), "--daemon"],
                self.node_env(
                    GLIMPSE_SCRUBBER__HEARTBEAT_FILE=str(run / f"{name}.heartbeat"),
                    GLIMPSE_METRICS__PORT=str(metrics_port),
                ),
                metrics_port=metrics_port,
            )
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(
            HAPROXY_TEMPLATE.read_text().format(
                socket=self.stats_socket,
                port=self.port,
                inter=CHECK_INTERVAL_MS,
                servers="\n".join(servers),
            )
        )
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.nodes["balancer"] = Node("balancer", "balancer", [haproxy, "-db", "-f", str(cfg)])

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-tail:]}" for name in self.nodes)

    # -- starting -----------------------------------------------------------------------

    def migrate(self) -> None:
        done = subprocess.run(  # noqa: S603 -- our own command
            [str(BIN / "glimpse-manage"), "db", "sync"],
            env=self.node_env(),
            capture_output=True,
            text=True,
            timeout=STOP_WITHIN,
            check=False,
        )
        if done.returncode != 0:
            msg = f"glimpse-manage db sync failed:\n{done.stdout}{done.stderr}"
            raise RuntimeError(msg)

    def start(self) -> None:
        """Migrate the database, start every node, return once all of them serve."""
        if not self.nodes:
            self.plan()
        self.migrate()
        for node in self.nodes.values():
            self.spawn(node)
        # The balancer first: an API node is ready once the balancer sees it UP.
        for node in sorted(self.nodes.values(), key=lambda n: n.kind != "balancer"):
            self.wait_ready(node)

    def spawn(self, node: Node) -> None:
        """Start `node` in a process group of its own (a kill reaches its children too)."""
        env = None
        if node.kind != "balancer":
            # A fresh metrics directory each start, under the work directory: a killed process
            # cannot remove its own, and its gauges must not count in the next one's.
            metrics_dir = self.workdir / "metrics" / node.name
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            env = {**node.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        with (self.workdir / f"{node.name}.log").open("ab") as log:
            node.process = subprocess.Popen(  # noqa: S603 -- our own commands
                node.argv,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, node: Node) -> None:
        def alive() -> None:
            for needed in (node, self.nodes["balancer"]):
                if not needed.running:
                    msg = f"{needed.name} exited:\n{self.log(needed.name)[-4000:]}"
                    raise RuntimeError(msg)

        def ready() -> bool | None:
            alive()
            if node.kind == "api":
                healthy = http_status(f"http://127.0.0.1:{node.port}/healthcheck") == HTTPStatus.OK
                return (healthy and self.server_state(node.name) == "UP") or None
            if node.kind == "worker":
                return self.worker_answers(node) or None
            if node.kind == "scrubber":
                return Path(node.env["GLIMPSE_SCRUBBER__HEARTBEAT_FILE"]).exists() or None
            return self.stats_socket.exists() or None

        wait_for(f"{node.name} to be ready", ready)

    def worker_answers(self, node: Node) -> bool:
        ping = subprocess.run(  # noqa: S603 -- our own command
            [*node.argv, "--ping"],
            env=node.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return ping.returncode == 0

    # -- the balancer's view ---------------------------------------------------------------

    def haproxy_command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.stats_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_state(self, name: str) -> str | None:
        """UP, DOWN, MAINT... of API node `name` as the balancer sees it (None: unknown yet)."""
        if not self.stats_socket.exists():
            return None
        try:
            stat = self.haproxy_command("show stat")
        except OSError:
            return None
        lines = stat.lstrip("# ").splitlines()
        header = lines[0].split(",") if lines else []
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "api" and row.get("svname") == name:
                return row.get("status", "").split(" ")[0] or None
        return None

    # -- stopping ---------------------------------------------------------------------------

    def signal(self, name: str, signum: int) -> None:
        node = self.nodes[name]
        if node.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signum)

    def stop_node(self, name: str, within: float = STOP_WITHIN) -> int:
        """SIGTERM (an API node drains first), SIGKILL past `within`; the exit code."""
        node = self.nodes[name]
        if node.process is None:
            return 0
        # The API's process alone: its drain ends when it exits, its group may linger.
        if node.running:
            with contextlib.suppress(ProcessLookupError):
                node.process.send_signal(signal.SIGTERM)
        try:
            return node.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill(name)
            return node.process.wait()
        finally:
            # Whatever of its group is left (a worker's pool) goes with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)

    def kill(self, name: str) -> None:
        """kill -9 of the node's whole process group: no handler, no drain, no ack."""
        node = self.nodes[name]
        if node.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.process.wait(timeout=STOP_WITHIN)

    def restart(self, name: str) -> None:
        """Stop `name` gracefully, start it again, return once it serves (balancer: UP)."""
        self.stop_node(name)
        node = self.nodes[name]
        if node.kind == "scrubber":
            Path(node.env["GLIMPSE_SCRUBBER__HEARTBEAT_FILE"]).unlink(missing_ok=True)
        self.spawn(node)
        self.wait_ready(node)

    def stop(self) -> dict[str, int]:
        """Every node, API nodes first (drained), the balancer last; their exit codes."""
        order = sorted(
            self.nodes,
            key=lambda n: ["api", "worker", "scrubber", "balancer"].index(self.nodes[n].kind),
        )
        for name in order:
            if self.nodes[name].running:
                with contextlib.suppress(ProcessLookupError):
                    self.nodes[name].process.send_signal(signal.SIGTERM)  # type: ignore[union-attr] # running
        codes = {name: self.stop_node(name) for name in order}
        shutil.rmtree(self._sockdir, ignore_errors=True)
        return codes


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    """Start `cluster`; stop every process it started on the way out, whatever happened."""
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def default_conf(workdir: Path, database_url: str, broker_url: str) -> str:
    """A glance-api.conf for a cluster whose data stays under `workdir`."""
    return f"""\
[DEFAULT]
enabled_backends = fast:file, cheap:file

[glance_store]
default_backend = fast

[fast]
store_description = Default store
filesystem_store_datadir = {workdir / "images"}

[cheap]
store_description = Second store, the copy-image target
filesystem_store_datadir = {workdir / "cheap"}

[os_glance_staging_store]
# Staged imports: any API node writes them, any worker reads them.
filesystem_store_datadir = {workdir / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {workdir / "tasks"}

[scrubber]
wakeup_time = 30

[database]
connection = {database_url}

[celery]
broker_url = {broker_url}
worker_concurrency = 1
"""


def supervise(cluster: Cluster, requests: list[int]) -> None:
    """Until SIGINT or SIGTERM is in `requests`: start exited nodes again, roll the API nodes
    on SIGHUP."""
    print(  # noqa: T201 -- the operator's answer
        f"cluster: ready at {cluster.url}; logs in {cluster.workdir}; HAProxy's runtime API: "
        f"{cluster.stats_socket}",
        flush=True,
    )
    for node in cluster.nodes.values():
        if node.kind != "balancer":
            print(f"cluster: {node.name} pid {node.pid}, {node.metrics_url}", flush=True)  # noqa: T201
    while not any(s in (signal.SIGINT, signal.SIGTERM) for s in requests):
        if signal.SIGHUP in requests:
            requests.remove(signal.SIGHUP)
            for node in cluster.nodes.values():
                if node.kind == "api":
                    print(f"cluster: rolling {node.name}", flush=True)  # noqa: T201
                    cluster.restart(node.name)
        for node in cluster.nodes.values():
            if not node.running:
                print(f"cluster: {node.name} exited; starting it again", flush=True)  # noqa: T201
                time.sleep(1)
                cluster.spawn(node)
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster", description=__doc__)
    parser.add_argument("--config-file", type=Path, help="glance-api.conf every process reads")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "cluster")
    parser.add_argument("--port", type=int, default=9292, help="the balancer's port")
    parser.add_argument(
        "--api-ports", default="9293,9294", help="one port per API node (comma-separated)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scrubbers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/glimpse",
        help="without --config-file",
    )
    parser.add_argument(
        "--broker-url", default="redis://127.0.0.1:6379/0", help="without --config-file"
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = args.config_file
    if conf is None:
        conf = workdir / "glance-api.conf"
        conf.write_text(default_conf(workdir, args.database_url, args.broker_url))
    cluster = Cluster(
        workdir,
        conf.resolve(),
        args.port,
        [int(port) for port in args.api_ports.split(",")],
        workers=args.workers,
        scrubbers=args.scrubbers,
    )
    requests: list[int] = []
    started = False

    def note(signum: int, _frame: FrameType | None) -> None:
        if not started and signum != signal.SIGHUP:
            raise SystemExit(1)  # still starting: stop what has started (finally, below)
        requests.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, note)
    try:
        cluster.start()
        started = True
        supervise(cluster, requests)
    finally:
        codes = cluster.stop()
        print(f"cluster: stopped {codes}", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
