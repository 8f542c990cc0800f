"""A real `glimpse-api` (uvicorn) server and image files for the client compatibility tests.

The server runs with the default auth_strategy (noauth): every request acts as the admin of
project "glimpse", so the clients may send any token.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from compat_helpers import CompatServer, ImageFile, MiB, qcow2_bytes, write_image

if TYPE_CHECKING:
    from collections.abc import Iterator

BIG_IMAGE_SIZE = 64 * MiB
START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
BIN_DIR = Path(sys.executable).parent


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


@pytest.fixture(scope="session")
def compat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompatServer]:
    """A server on a fresh SQLite database and a free port, for the whole session."""
    workdir = tmp_path_factory.mktemp("compat-server")
    with running_server(workdir, server_env(workdir, free_port())) as server:
        yield server


@pytest.fixture(scope="session")
def server_url(compat_server: CompatServer) -> str:
    """Base URL of the running server, without a trailing slash (no /v2)."""
    return compat_server.url


@pytest.fixture(scope="session")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> ImageFile:
    """64 MiB of random bytes, written 1 MiB at a time, with its md5 and sha512."""
    path = tmp_path_factory.mktemp("compat-images") / "big.raw"
    return write_image(path, (os.urandom(MiB) for _ in range(BIG_IMAGE_SIZE // MiB)))


@pytest.fixture(scope="session")
def qcow2_image(tmp_path_factory: pytest.TempPathFactory) -> ImageFile:
    """A small valid qcow2 image (1 MiB virtual size, 256 KiB on disk)."""
    path = tmp_path_factory.mktemp("compat-images") / "cirros.qcow2"
    return write_image(path, iter([qcow2_bytes()]))


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: compat-<test name>-<random>."""
    test_name: str = request.node.name
    return f"compat-{test_name[:40]}-{uuid.uuid4().hex[:8]}"
