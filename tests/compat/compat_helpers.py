"""Shared helpers of the compatibility tests (imported by conftest and the test modules)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from support import terminate

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

MiB = 1024 * 1024
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
BIN_DIR = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A file on disk and the digests the server should report for it."""

    path: Path
    size: int
    md5: str
    sha512: str

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class CompatServer:
    url: str
    log_file: Path
    datadir: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def write_image(path: Path, chunks: Iterable[bytes]) -> ImageFile:
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    size = 0
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
    return ImageFile(path=path, size=size, md5=md5.hexdigest(), sha512=sha512.hexdigest())


def qcow2_bytes(virtual_size: int = MiB, cluster_bits: int = 16) -> bytes:
    """An empty but well-formed qcow2 (version 3) image, as `qemu-img create -f qcow2` makes.

    Four clusters (64 KiB each by default): header, refcount table, refcount block, L1 table.
    """
    cluster = 1 << cluster_bits
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (cluster * l2_entries))
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",  # magic
        3,  # version
        0,  # backing_file_offset
        0,  # backing_file_size
        cluster_bits,
        virtual_size,
        0,  # crypt_method
        l1_size,
        3 * cluster,  # l1_table_offset
        1 * cluster,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        0,  # incompatible_features
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order: 16-bit refcounts
        104,  # header_length
    )
    data = bytearray(4 * cluster)
    data[: len(header)] = header
    # Header extension area: just the end marker (type 0, length 0) -- already zero bytes.
    struct.pack_into(">Q", data, 1 * cluster, 2 * cluster)  # refcount table -> block
    for index in range(4):  # every cluster of the file is referenced once
        struct.pack_into(">H", data, 2 * cluster + 2 * index, 1)
    return bytes(data)


# -- a real glimpse-api process --------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(workdir: Path, port: int) -> dict[str, str]:
    # Nothing from the caller's environment may point the server at another configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    env.update(
        GLIMPSE_BIND_PORT=str(port),
        GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{workdir / 'compat.sqlite'}",
        GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(workdir / "images"),
        GLIMPSE_CELERY__BROKER_DATA_DIR=str(workdir / "broker"),
        GLIMPSE_LOG_LEVEL="WARNING",
    )
    return env


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"glimpse-api exited with {process.returncode}:\n{log_file.read_text()}"
                )
            try:
                if client.get(f"{url}/versions").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    _stop(process)
    pytest.fail(
        f"glimpse-api did not answer GET /versions in {START_TIMEOUT:.0f} s:\n"
        f"{log_file.read_text()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_server(workdir: Path, env: dict[str, str]) -> Iterator[CompatServer]:
    """Sync the database, start `glimpse-api` with `env`, and stop it afterwards."""
    sync = subprocess.run(
        [str(BIN_DIR / "glimpse-manage"), "db", "sync"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sync.returncode == 0, f"glimpse-manage db sync failed:\n{sync.stdout}{sync.stderr}"

    log_file = workdir / "glimpse-api.log"
    url = f"http://127.0.0.1:{env['GLIMPSE_BIND_PORT']}"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN_DIR / "glimpse-api")],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url, process, log_file)
        yield CompatServer(url=url, log_file=log_file, datadir=workdir / "images")
    finally:
        _stop(process)


@contextlib.contextmanager
def worker_and_server(
    workdir: Path, broker_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[CompatServer]:
    """glimpse-api and one glimpse-worker (log: workdir/glimpse-worker.log) sharing a
    database, stores and broker."""
    env = server_env(workdir, free_port())
    env["GLIMPSE_CELERY__BROKER_URL"] = broker_url
    env.update(extra_env or {})
    env["GLIMPSE_CELERY__WORKER_CONCURRENCY"] = "1"
    with running_server(workdir, env) as server:
        log = (workdir / "glimpse-worker.log").open("wb")
        worker = subprocess.Popen(
            [str(BIN_DIR / "glimpse-worker"), "--loglevel=INFO"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield server
        finally:
            terminate(worker)
            log.close()


# compat, and the deprecation warnings openstacksdk gives about its own internals on every
# Connection and proxy call.
SDK_MARKS = [
    pytest.mark.compat,
    pytest.mark.filterwarnings(
        "ignore:Support for InfluxDB:openstack.warnings.RemovedInSDK60Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The ignore_missing parameter of all find_:openstack.warnings.RemovedInSDK60Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The _compute_attributes method:openstack.warnings.RemovedInSDK50Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The 'service_type' parameter is unnecesary:openstack.warnings.RemovedInSDK50Warning"
    ),
]


ACTIVE_WITHIN = 120.0  # seconds before a poll gives up (not an assertion on speed)


def wait_until_active(client: httpx.Client, image_id: str, workdir: Path) -> dict[str, object]:
    deadline = time.monotonic() + ACTIVE_WITHIN
    while True:
        image: dict[str, object] = client.get(f"/v2/images/{image_id}").json()
        if image["status"] not in {"uploading", "importing"} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    worker_log = (workdir / "glimpse-worker.log").read_text(errors="replace")
    assert image["status"] == "active", f"{image}\n{worker_log}"
    return image
