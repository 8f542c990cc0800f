"""Kept-alive client connections on a real server: `client_socket_timeout` (Glance's 900 s
default, not uvicorn's 5 s) and `http_keepalive = false`, written as in glance-api.conf."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from compat_helpers import free_port, running_server, server_env

REQUEST = b"GET /versions HTTP/1.1\r\nHost: glimpse.test\r\nAccept: application/json\r\n\r\n"


def read_response(sock: socket.socket) -> tuple[bytes, dict[str, str]]:
    """One response (status line and headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status.encode(), headers


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection (EOF) before `within` seconds pass."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


@pytest.fixture
def serve(tmp_path: Path):
    def start(conf: str):
        (tmp_path / "glance-api.conf").write_text(conf)
        env = server_env(tmp_path, free_port())
        env["GLIMPSE_CONFIG"] = str(tmp_path / "glance-api.conf")
        return running_server(tmp_path, env)

    return start


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_an_idle_connection_outlives_uvicorns_five_seconds(serve) -> None:
    with serve("[DEFAULT]\n") as server, connect(server.url) as sock:
        sock.sendall(REQUEST)
        status, headers = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert "close" not in headers.get("connection", "")
        time.sleep(6)  # a client pausing on its connection, past uvicorn's own 5 s default
        sock.sendall(REQUEST)
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"


def test_client_socket_timeout_closes_an_idle_connection(serve) -> None:
    with serve("[DEFAULT]\nclient_socket_timeout = 1\n") as server, connect(server.url) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
        # Closed after about 1 s: sooner than uvicorn's own 5 s would.
        assert closed_by_server(sock, within=4)


def test_without_http_keepalive_each_response_closes_its_connection(serve) -> None:
    with serve("[DEFAULT]\nhttp_keepalive = False\n") as server, connect(server.url) as sock:
        sock.sendall(REQUEST)
        status, headers = read_response(sock)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["connection"] == "close"
        assert closed_by_server(sock, within=30)
