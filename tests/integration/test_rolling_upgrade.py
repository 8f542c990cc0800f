"""A rolling upgrade under load, with no failed request and no lost or corrupted image.

The previous release is the code of the commit before the newest migration (its tree taken
with `git archive` into a temporary folder, run on this virtualenv through PYTHONPATH). Two API
processes and a worker start on it, on PostgreSQL and Redis. A steady client load (creates,
uploads, downloads, glance-direct imports) runs through both API nodes; it stands in for the
balancer, taking a node out of rotation (and letting its requests finish) before the node is
restarted and putting it back once it answers. Then, as an operator would: `db expand`, each
node and the worker restarted on the new code, `db migrate`, `db contract`. Pre-Train location
rows (`backend` metadata) made before the upgrade are rewritten by `db migrate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import asyncpg
import httpx
import pytest

from glimpse.db import migrate
from glimpse.db.migrate import Phase
from support import ROOT, command, environment, free_port, image_bytes
from topology import START_WITHIN, wait_for

VERSIONS = "shared/src/glimpse/db/migrations/versions"
SOURCE_DIRS = ("shared/src", "services/api/src", "services/worker/src", "services/scrubber/src")
OCTET = {"Content-Type": "application/octet-stream"}
IMAGE_BYTES = 96 * 1024
IMPORT_EVERY = 4  # one request cycle in four is a glance-direct import
PAUSE = 0.05  # seconds between cycles: a steady load, not a flood


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def previous_release(into: Path) -> tuple[Path, str]:
    """The tree of the newest first-parent commit without the newest migration; its newest
    revision."""
    newest = max(path.name for path in (ROOT / VERSIONS).glob("[0-9]*.py"))
    for commit in git("rev-list", "--first-parent", "HEAD").split():
        present = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}:{VERSIONS}/{newest}"],
            capture_output=True,
            check=False,
        )
        if present.returncode != 0:
            break
    else:
        if git("rev-parse", "--is-shallow-repository").strip() == "true":
            # The previous release is not in a shallow clone's history: nothing to upgrade from.
            pytest.skip(f"shallow clone: no commit before {newest} to start the upgrade from")
        pytest.fail(f"no commit before {newest} in this clone's history")
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "shared", "services"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=120)
    old_newest = max(p.stem for p in (into / VERSIONS).glob("[0-9]*.py"))
    return into, "_".join(old_newest.split("_")[:2])


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    workdir: Path
    conf: Path
    old_code: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, *, old: bool, port: int | None = None) -> dict[str, str]:
        extra = {"GLIMPSE_CONFIG": str(self.conf)}
        if port is not None:
            extra["GLIMPSE_BIND_PORT"] = str(port)
        if old:
            extra["PYTHONPATH"] = os.pathsep.join(str(self.old_code / d) for d in SOURCE_DIRS)
        return environment(**extra)

    def manage(self, *args: str, old: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command("glimpse-manage"), "db", *args],
            cwd=self.workdir,
            env=self.env(old=old),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def start(
        self, name: str, *args: str, old: bool, port: int | None = None, log: str
    ) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{log}.log").open("ab") as output:
            process = subprocess.Popen(
                [command(name), *args],
                cwd=self.workdir,
                env=self.env(old=old, port=port),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start_api(self, node: Node, *, old: bool) -> None:
        node.process = self.start("glimpse-api", old=old, port=node.port, log=node.name)
        process = node.process

        def answers() -> bool | None:
            assert process.poll() is None, self.log(node.name)
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{node.url}/versions", timeout=2).status_code == 200 or None
            return None

        wait_for(f"{node.name} to answer", answers, START_WITHIN)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    @staticmethod
    def stop(process: subprocess.Popen[bytes] | None) -> None:
        """SIGTERM to the main process, as a container runtime stops one (graceful: requests and
        tasks in progress finish; a Celery pool process signalled directly would die mid-task),
        then wait; whatever is left of its process group is killed."""
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)


@dataclass
class Made:
    image_id: str
    sha512: str
    imported: bool


class Load:
    """Client traffic through the nodes in rotation, each cycle on the next node."""

    def __init__(self, nodes: list[Node]) -> None:
        self.rotation = list(nodes)
        self.lock = threading.Lock()
        self.in_flight = {node.name: 0 for node in nodes}
        self.requests = 0
        self.failures: list[str] = []
        self.made: list[Made] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="load", daemon=True)

    def drain(self, node: Node) -> None:
        with self.lock:
            self.rotation.remove(node)
        wait_for(f"{node.name} to drain", lambda: self.in_flight[node.name] == 0 or None, 120)

    def restore(self, node: Node) -> None:
        with self.lock:
            self.rotation.append(node)

    def _pick(self, counter: Iterator[int]) -> Node:
        with self.lock:
            node = self.rotation[next(counter) % len(self.rotation)]
            self.in_flight[node.name] += 1
            return node

    def _expect(self, response: httpx.Response, status: int, what: str) -> bool:
        with self.lock:
            self.requests += 1
            if response.status_code != status:
                self.failures.append(f"{what}: {response.status_code} {response.text[:200]}")
                return False
        return True

    def _cycle(self, client: httpx.Client, base: str, imported: bool) -> None:
        data = image_bytes(IMAGE_BYTES)
        body = {"name": "rolling", "disk_format": "raw", "container_format": "bare"}
        created = client.post(f"{base}/v2/images", json=body)
        if not self._expect(created, 201, "create"):
            return
        image_id = created.json()["id"]
        if imported:
            staged = client.put(f"{base}/v2/images/{image_id}/stage", content=data, headers=OCTET)
            if not self._expect(staged, 204, "stage"):
                return
            started = client.post(
                f"{base}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
            )
            if not self._expect(started, 202, "import"):
                return
        else:
            uploaded = client.put(f"{base}/v2/images/{image_id}/file", content=data, headers=OCTET)
            if not self._expect(uploaded, 204, "upload"):
                return
            downloaded = client.get(f"{base}/v2/images/{image_id}/file")
            if self._expect(downloaded, 200, "download") and downloaded.content != data:
                with self.lock:
                    self.failures.append(f"download of {image_id}: other bytes")
        with self.lock:
            self.made.append(Made(image_id, hashlib.sha512(data).hexdigest(), imported))

    def _run(self) -> None:
        counter = itertools.count()
        with httpx.Client(timeout=60) as client:
            for cycle in itertools.count():
                if self.stopping.is_set():
                    return
                node = self._pick(counter)
                try:
                    self._cycle(client, node.url, imported=cycle % IMPORT_EVERY == 0)
                    time.sleep(PAUSE)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.requests += 1
                        self.failures.append(f"{node.name}: {type(exc).__name__}: {exc}")
                finally:
                    with self.lock:
                        self.in_flight[node.name] -= 1

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=120)


def settled(client: httpx.Client, made: Made) -> dict[str, object] | None:
    """The image once its upload or import has ended (active, or failed)."""
    image: dict[str, object] = client.get(f"/v2/images/{made.image_id}").json()
    ended = image["status"] in {"active", "killed"} or bool(image.get("os_glance_failed_import"))
    return image if ended else None


def make_legacy_rows(url: str, database_url: str, count: int) -> list[Made]:
    """Images uploaded through the old node, their location metadata then given the pre-Train
    shape ({"backend": store})."""
    made = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            data = image_bytes(IMAGE_BYTES)
            body = {"name": "pre-train", "disk_format": "raw", "container_format": "bare"}
            image_id = client.post(f"{url}/v2/images", json=body).json()["id"]
            response = client.put(f"{url}/v2/images/{image_id}/file", content=data, headers=OCTET)
            assert response.status_code == 204, response.text
            made.append(Made(image_id, hashlib.sha512(data).hexdigest(), imported=False))

    async def rewrite() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                'UPDATE image_locations SET meta_data = \'{"backend": "file"}\''
                " WHERE image_id = ANY($1)",
                [m.image_id for m in made],
            )
        finally:
            await connection.close()

    asyncio.run(rewrite())
    return made


@contextlib.contextmanager
def timed(figures: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    figures[step] = time.perf_counter() - started


def upgrade_under_load(
    cluster: Cluster,
    nodes: list[Node],
    worker: subprocess.Popen[bytes],
    figures: dict[str, float],
    legacy_rows: int,
) -> Load:
    """The operator's steps, each timed, while the load runs."""
    with Load(nodes) as load:
        wait_for("traffic", lambda: load.requests > 20 or None, 120)
        with timed(figures, "expand"):
            expanded = cluster.manage("expand")
        assert expanded.returncode == 0, expanded.stdout + expanded.stderr
        for node in nodes:
            with timed(figures, f"restart {node.name}"):
                load.drain(node)
                cluster.stop(node.process)
                cluster.start_api(node, old=False)
                load.restore(node)
            # Old and new code serve side by side for a while.
            seen = load.requests
            wait_for("mixed traffic", lambda s=seen: load.requests > s + 8 or None, 120)
        with timed(figures, "restart worker"):
            cluster.stop(worker)
            cluster.start("glimpse-worker", "--loglevel=INFO", old=False, log="worker-new")
        assert cluster.manage("check").returncode == 4
        with timed(figures, "migrate"):
            migrated = cluster.manage("migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert migrated.stdout.strip() == f"Migrated {legacy_rows} rows"
        with timed(figures, "contract"):
            contracted = cluster.manage("contract")
        assert contracted.returncode == 0, contracted.stdout + contracted.stderr
        requests_before_end = load.requests
        wait_for("more traffic", lambda: load.requests > requests_before_end + 8 or None, 120)
    return load


# Processes start and stop one after another on a 2-core machine: more than the usual 300 s
# hang guard may pass (it took under 3 minutes here).
@pytest.mark.timeout(600)
def test_rolling_upgrade_under_load(tmp_path: Path, empty_pg: str, redis_db: str) -> None:
    old_code, old_head = previous_release(tmp_path / "previous-release")
    expand_head = migrate.branch_head(Phase.EXPAND)
    assert old_head != expand_head, "the previous release must be one migration behind"
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        "\n".join(
            [
                "[DEFAULT]",
                "enabled_import_methods = [glance-direct]",
                "[glance_store]",
                f"filesystem_store_datadir = {tmp_path / 'images'}",
                "[os_glance_staging_store]",
                f"filesystem_store_datadir = {tmp_path / 'staging'}",
                "[os_glance_tasks_store]",
                f"filesystem_store_datadir = {tmp_path / 'tasks'}",
                "[database]",
                f"connection = {empty_pg}",
                "[celery]",
                f"broker_url = {redis_db}",
                "worker_concurrency = 1",
            ]
        )
        + "\n"
    )
    cluster = Cluster(tmp_path, conf, old_code)
    nodes = [Node("api-a", free_port()), Node("api-b", free_port())]
    figures: dict[str, float] = {}
    try:
        synced = cluster.manage("sync", old=True)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        for node in nodes:
            cluster.start_api(node, old=True)
        worker = cluster.start("glimpse-worker", "--loglevel=INFO", old=True, log="worker-old")
        legacy = make_legacy_rows(nodes[0].url, empty_pg, 5)
        assert cluster.manage("check").returncode == 3
        load = upgrade_under_load(cluster, nodes, worker, figures, len(legacy))
        assert load.failures == []
        assert cluster.manage("check").returncode == 0
        # Every image made, before or during the upgrade, is whole.
        with httpx.Client(base_url=nodes[0].url, timeout=60) as client:
            for made in [*legacy, *load.made]:
                image = wait_for(
                    f"image {made.image_id} to settle\n{cluster.log('worker-new')}",
                    lambda m=made: settled(client, m),
                    120,
                )
                assert image["status"] == "active", (image, cluster.log("worker-new"))
                data = client.get(f"/v2/images/{made.image_id}/file").content
                assert hashlib.sha512(data).hexdigest() == made.sha512, made.image_id
        imports = sum(made.imported for made in load.made)
        print(  # noqa: T201 -- the figures for the record
            f"\nrolling upgrade: {load.requests} requests, {len(load.failures)} failed, "
            f"{len(load.made)} images ({imports} imported); "
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in figures.items())
        )
    finally:
        cluster.stop_all()
