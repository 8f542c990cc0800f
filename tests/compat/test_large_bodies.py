"""Request bodies through the real server's protocol (glimpse_api.http_protocol), which hands
the application up to 1 MiB at a time: every byte arrives once and in order, however the
client frames the body, and the connection serves the next request afterwards."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from compat_helpers import CompatServer, MiB

pytestmark = pytest.mark.compat

# Not a whole number of the protocol's messages, nor of the store's blocks.
BODY_SIZE = 5 * MiB + 12345


def _new_image(client: httpx.Client, name: str) -> str:
    created = client.post(
        "/v2/images", json={"name": name, "disk_format": "raw", "container_format": "bare"}
    )
    assert created.status_code == 201
    image_id: str = created.json()["id"]
    return image_id


def _assert_stored(client: httpx.Client, image_id: str, data: bytes) -> None:
    shown = client.get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["size"]) == ("active", len(data))
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert client.get(f"/v2/images/{image_id}/file").content == data


def test_a_sized_body_arrives_whole_and_the_connection_serves_on(
    compat_server: CompatServer,
) -> None:
    data = os.urandom(BODY_SIZE)
    with httpx.Client(base_url=compat_server.url) as client:
        first, second = _new_image(client, "sized-1"), _new_image(client, "sized-2")
        for image_id in (first, second):  # the second on the same kept-alive connection
            put = client.put(
                f"/v2/images/{image_id}/file",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 204
        for image_id in (first, second):
            _assert_stored(client, image_id, data)


def test_a_chunked_body_in_odd_pieces_arrives_whole(compat_server: CompatServer) -> None:
    data = os.urandom(BODY_SIZE)

    def pieces() -> Iterator[bytes]:  # a generator: httpx sends it chunked
        for start in range(0, len(data), 100_003):
            yield data[start : start + 100_003]

    with httpx.Client(base_url=compat_server.url) as client:
        image_id = _new_image(client, "chunked")
        put = client.put(
            f"/v2/images/{image_id}/file",
            content=pieces(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 204
        _assert_stored(client, image_id, data)


def test_a_body_sent_after_100_continue_arrives_whole(compat_server: CompatServer) -> None:
    data = os.urandom(BODY_SIZE)
    parts = urlsplit(compat_server.url)
    with httpx.Client(base_url=compat_server.url) as client:
        image_id = _new_image(client, "expect")
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            head = (
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\n"
                f"Host: {parts.netloc}\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Expect: 100-continue\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            )
            sock.sendall(head.encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
            sock.sendall(data)
            assert sock.recv(1024).startswith(b"HTTP/1.1 204 ")
        _assert_stored(client, image_id, data)
