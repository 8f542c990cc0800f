"""Loopback servers the store drivers are tested against: moto's S3 server and a small HTTP
file server with Range support."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import boto3
import httpx
import pytest

MOTO_START_TIMEOUT = 60.0
SEND_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    host: str  # host:port, as in s3:// locations
    log: Path | None = None  # the server's request log, one line per request

    def requests(self, method: str, path: str) -> int:
        """How many `method path` requests the server has logged so far."""
        if self.log is None:
            return 0
        needle = f'"{method} {path} '
        return sum(needle in line for line in self.log.read_text(errors="replace").splitlines())


_S3_CLIENTS: list[Any] = []  # closed by close_s3_clients at the end of the session


def s3_client(moto: MotoServer, access_key: str, secret_key: str) -> Any:
    """A boto3 client of the moto server, to check what a store really wrote. Kept until the
    session ends (close_s3_clients), so its pooled connections are closed, never collected."""
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    _S3_CLIENTS.append(client)
    return client


def close_s3_clients() -> None:
    while _S3_CLIENTS:
        _S3_CLIENTS.pop().close()


def wait_until_answering(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + MOTO_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(endpoint + "/moto-api/", timeout=2.0)
            return
        time.sleep(0.1)
    pytest.fail(f"moto server did not answer within {MOTO_START_TIMEOUT}s:\n{log.read_text()}")


@dataclass(frozen=True)
class HttpServer:
    """Serves files of `root` under `base`. Path prefixes choose a behaviour:
    /files/<name> honours Range; /norange/<name> ignores it (always 200 and the whole file);
    /nolength/<name> answers HEAD without Content-Length; /redirect/<n>/<name> redirects n
    times before /files/<name>; /to/<url> redirects to <url>; /status/<code>/<name> answers
    <code>. A proxy request (an absolute URL) is served the same way and counted in
    `proxied`."""

    base: str
    root: Path
    proxied: list[str]


class RequestHandler(BaseHTTPRequestHandler):
    root: Path
    proxied: list[str]
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        return  # quiet: pytest shows stderr of failing tests

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = self.path
        if path.startswith("http://"):  # a request sent to us as a proxy
            self.proxied.append(path)
            path = urlsplit(path).path
        path = path.partition("?")[0]  # a query (a presigned URL's signature) names no file
        mode, _, rest = unquote(path).lstrip("/").partition("/")
        if mode == "status":
            self._answer(int(rest.partition("/")[0]), {"Content-Length": "0"})
            return
        if mode == "to":
            self._answer(302, {"Location": rest, "Content-Length": "0"})
            return
        if mode == "redirect":
            hops, _, name = rest.partition("/")
            target = f"/files/{name}" if int(hops) <= 1 else f"/redirect/{int(hops) - 1}/{name}"
            self._answer(302, {"Location": target, "Content-Length": "0"})
            return
        file = self.root / rest
        if mode not in ("files", "norange", "nolength") or not file.is_file():
            self._answer(404, {"Content-Length": "0"})
            return
        size = file.stat().st_size
        start, stop = 0, size
        status = 200
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and mode != "norange":
            start = int(match.group(1))
            stop = min(int(match.group(2)) + 1 if match.group(2) else size, size)
            if start >= size:
                self._answer(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        if not (mode == "nolength" and not body):
            headers["Content-Length"] = str(stop - start)
        self._answer(status, headers)
        if body:
            with file.open("rb") as handle:
                self._send_span(handle, start, stop)

    def _answer(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_span(self, handle: BinaryIO, start: int, stop: int) -> None:
        handle.seek(start)
        remaining = stop - start
        with contextlib.suppress(ConnectionError):  # the client may stop reading early
            while remaining > 0:
                chunk = handle.read(min(SEND_CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)


@contextlib.contextmanager
def serving_http(root: Path) -> Iterator[HttpServer]:
    """A threaded loopback HTTP server of the files under `root` (made here)."""
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
