"""A client that goes away mid-upload, against the real uvicorn server."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from compat_helpers import CompatServer

pytestmark = pytest.mark.compat


def test_disconnect_mid_upload_leaves_the_image_queued(compat_server: CompatServer) -> None:
    base = compat_server.url
    created = httpx.post(
        f"{base}/v2/images",
        json={"name": "disconnect", "disk_format": "raw", "container_format": "bare"},
        headers={"Accept": "application/json"},
    )
    assert created.status_code == 201
    image_id = created.json()["id"]
    parts = urlsplit(base)
    declared = 64 * 1024 * 1024
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode())
        for _ in range(8):  # 8 MiB of the promised 64
            sock.sendall(b"\0" * (1024 * 1024))
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/v2/images/{image_id}").json()["status"]
        if status == "queued":
            break
        time.sleep(0.2)
    assert status == "queued"
    shown = httpx.get(f"{base}/v2/images/{image_id}").json()
    assert (shown["size"], shown["checksum"]) == (None, None)
    leftovers = [p.name for p in compat_server.datadir.iterdir() if image_id in p.name]
    assert leftovers == []
    # The image still takes a complete upload afterwards.
    done = httpx.put(
        f"{base}/v2/images/{image_id}/file",
        content=b"complete",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 204
    assert httpx.get(f"{base}/v2/images/{image_id}/file").content == b"complete"
