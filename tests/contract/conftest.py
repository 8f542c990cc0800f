"""Real servers for the store drivers: moto's S3 server and an HTTP file server, on loopback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from store_servers import HttpServer, MotoServer, RequestHandler, wait_until_answering

from support import free_port


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's standalone S3 server in its own process, answering real S3 HTTP requests."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(endpoint, process, log)
        yield MotoServer(endpoint=endpoint, host=f"127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    root = tmp_path / "http-root"
    root.mkdir()
    proxied: list[str] = []
    handler = type("Handler", (RequestHandler,), {"root": root, "proxied": proxied})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-store-server", daemon=True)
    thread.start()
    try:
        yield HttpServer(base=f"http://127.0.0.1:{server.server_port}", root=root, proxied=proxied)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
