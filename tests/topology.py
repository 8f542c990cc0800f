"""The production topology as local processes: glimpse-api, glimpse-worker and
glimpse-scrubber sharing one glance-api.conf, for tests that kill, stop and restart them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from support import command, environment, free_port

START_WITHIN = 90.0  # seconds; a poll limit, not an assertion on speed
DONE_WITHIN = 180.0
OCTET = {"Content-Type": "application/octet-stream"}
T = TypeVar("T")


def wait_for(
    what: str, probe: Callable[[], T | None], within: float = DONE_WITHIN, every: float = 0.2
) -> T:
    """Poll `probe`, every `every` seconds, until it returns something other than None."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            msg = f"gave up waiting for {what} after {within:.0f} s"
            raise AssertionError(msg)
        time.sleep(every)


@dataclass
class Topology:
    """One working directory, one config file, and the processes started on it."""

    workdir: Path
    conf: Path
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return environment(GLIMPSE_CONFIG=str(self.conf), GLIMPSE_BIND_PORT=str(self.port))

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        names = sorted(p.stem for p in self.workdir.glob("*.log"))
        return "\n".join(f"--- {name}\n{self.log(name)[-4000:]}" for name in names)

    def start(self, name: str, *args: str, log_as: str | None = None) -> subprocess.Popen[bytes]:
        """Start `name` in its own process group (so a kill reaches its children too)."""
        with (self.workdir / f"{log_as or name}.log").open("ab") as log:
            process = subprocess.Popen(
                [command(name), *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command(name), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DONE_WITHIN,
            check=False,
        )

    def start_api(self) -> subprocess.Popen[bytes]:
        synced = self.run("glimpse-manage", "db", "sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        api = self.start("glimpse-api")

        def answers() -> bool | None:
            assert api.poll() is None, self.log("glimpse-api")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.url}/versions", timeout=2).status_code == 200 or None
            return None

        wait_for("glimpse-api to answer", answers, START_WITHIN)
        return api

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self.start("glimpse-worker", "--loglevel=INFO")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9 of the whole process group: no handler, no cleanup, no ack."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def shared_sections(
    workdir: Path, database_url: str, broker_url: str, datadir: Path | None = None
) -> list[str]:
    """The sections every process of a topology shares: the default file store (under
    `datadir`, default workdir/images), the reserved stores, the database and the broker (one
    job process per worker). Add to `[celery]` by appending lines."""
    return [
        "[glance_store]",
        f"filesystem_store_datadir = {datadir or workdir / 'images'}",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {workdir / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {workdir / 'tasks'}",
        *backing_sections(database_url, broker_url),
    ]


def backing_sections(database_url: str, broker_url: str) -> list[str]:
    """The database and the broker (one job process per worker), last in a config: add to
    `[celery]` by appending lines."""
    return [
        "[database]",
        f"connection = {database_url}",
        "[celery]",
        f"broker_url = {broker_url}",
        "worker_concurrency = 1",
    ]


@contextlib.contextmanager
def topology(workdir: Path, conf_lines: list[str]) -> Iterator[Topology]:
    conf = workdir / "glance-api.conf"
    conf.write_text("\n".join(conf_lines) + "\n")
    running = Topology(workdir, conf)
    try:
        yield running
    finally:
        running.stop_all()


@dataclass(frozen=True)
class ImageData:
    path: Path
    size: int
    md5: str
    sha512: str


def random_image(path: Path, size: int, block: int = 1024 * 1024) -> ImageData:
    """Write `size` random bytes in blocks (never all in memory) and digest them."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(block, left))
            out.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            left -= len(chunk)
    return ImageData(path, size, md5.hexdigest(), sha512.hexdigest())


def streamed(path: Path, block: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(block):
            yield chunk


def create_and_stage(client: httpx.Client, image: ImageData, **body: Any) -> str:
    created = client.post(
        "/v2/images",
        json={"disk_format": "raw", "container_format": "bare", "name": "robust", **body},
    )
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    staged = client.put(f"/v2/images/{image_id}/stage", content=streamed(image.path), headers=OCTET)
    assert staged.status_code == 204, staged.text
    return image_id


def image_when_settled(client: httpx.Client, image_id: str, topo: Topology) -> dict[str, Any]:
    """The image once it is no longer uploading or importing."""

    def settled() -> dict[str, Any] | None:
        image: dict[str, Any] = client.get(f"/v2/images/{image_id}").json()
        return None if image["status"] in {"uploading", "importing"} else image

    try:
        return wait_for(f"image {image_id} to settle", settled)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{topo.logs()}") from None


def downloaded_sha512(client: httpx.Client, image_id: str) -> str:
    digest = hashlib.sha512()
    with client.stream("GET", f"/v2/images/{image_id}/file") as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()
