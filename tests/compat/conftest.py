"""A real `glimpse-api` (uvicorn) server and image files for the client compatibility tests.

The server runs with the default auth_strategy (noauth): every request acts as the admin of
project "glimpse", so the clients may send any token.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest
from compat_helpers import (
    CompatServer,
    ImageFile,
    MiB,
    free_port,
    qcow2_bytes,
    running_server,
    server_env,
    write_image,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

BIG_IMAGE_SIZE = 64 * MiB


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
