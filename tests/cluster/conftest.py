"""One cluster of `make cluster` (scripts/cluster.py) for the tests of this directory: HAProxy,
two API nodes, two workers and two scrubbers on a PostgreSQL database and a Redis database of
their own, and a loopback web server for web-download whose answers a test can hold."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
import redis
import sqlalchemy as sa
from cluster_support import LEASE_SECONDS, WebServer, handler_for

from support import ROOT, claimed_redis_db, free_port

PG_ADMIN_DSN = os.environ.get("GLIMPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = "redis://127.0.0.1:6379"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("glimpse_cluster", ROOT / "scripts/cluster.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cluster_script = _script()
Cluster = cluster_script.Cluster


@pytest.fixture(scope="module")
def web_server() -> Iterator[WebServer]:
    web = WebServer(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(web))
    server.daemon_threads = True
    web.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, name="cluster-web", daemon=True)
    thread.start()
    try:
        yield web
    finally:
        for gate in web.held.values():
            gate.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def cluster_database() -> Iterator[str]:
    """A PostgreSQL database of the cluster's own (the cluster migrates it), dropped after.
    Needs HAProxy too, as every cluster does."""
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        if IN_CI:
            pytest.fail("HAProxy is required under CI=true (.ci/run installs Debian's haproxy)")
        pytest.skip("HAProxy is not installed (apt-get install haproxy)")

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError):
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true and does not answer: {PG_ADMIN_DSN}")
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    name = f"glimpse_cluster_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.engine.make_url(PG_ADMIN_DSN).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def cluster_broker() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(claimed_redis_db(REDIS_URL))
        except redis.RedisError:
            if IN_CI:
                pytest.fail("Redis is required under CI=true and does not answer on 6379")
            pytest.skip("Redis does not answer on 127.0.0.1:6379")
        yield url


def cluster_conf(workdir: Path, database_url: str, broker_url: str, web_port: int) -> str:
    return "\n".join(
        [
            "[DEFAULT]",
            "enabled_backends = fast:file, cheap:file",
            "delayed_delete = true",
            "scrub_time = 1",
            "[glance_store]",
            "default_backend = fast",
            "[fast]",
            f"filesystem_store_datadir = {workdir / 'fast'}",
            "[cheap]",
            f"filesystem_store_datadir = {workdir / 'cheap'}",
            "[os_glance_staging_store]",
            f"filesystem_store_datadir = {workdir / 'staging'}",
            "[os_glance_tasks_store]",
            f"filesystem_store_datadir = {workdir / 'tasks'}",
            "[import_filtering_opts]",
            "allowed_hosts = localhost",  # the loopback web server, by name; nothing else local
            f"allowed_ports = {web_port}",
            "[task]",
            f"lease_time = {LEASE_SECONDS}",
            "requeue_pending_after = 2",
            "[scrubber]",
            "wakeup_time = 1",
            f"lease_time = {LEASE_SECONDS}",
            "[database]",
            f"connection = {database_url}",
            "[celery]",
            f"broker_url = {broker_url}",
            "worker_concurrency = 1",
            f"visibility_timeout = {3 * LEASE_SECONDS}",
            "",
        ]
    )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_database: str,
    cluster_broker: str,
    web_server: WebServer,
) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("cluster")
    conf = workdir / "glance-api.conf"
    conf.write_text(cluster_conf(workdir, cluster_database, cluster_broker, web_server.port))
    running = Cluster(workdir, conf, free_port(), [free_port(), free_port()])
    try:
        running.start()
    except (AssertionError, RuntimeError) as exc:
        logs = running.logs()
        running.stop()
        pytest.fail(f"the cluster did not start: {exc}\n{logs}")
    try:
        yield running
    finally:
        running.stop()
