"""Shared fixtures: settings, databases (SQLite and the machine's PostgreSQL), the ASGI app."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import kombu
import kombu.exceptions
import pytest
import redis
import sqlalchemy as sa

from glimpse.config import Settings, load_settings
from glimpse.config.reserved import RESERVED_STORES
from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse_api.app import create_app
from store_servers import (
    HttpServer,
    MotoServer,
    close_s3_clients,
    serving_http,
    wait_until_answering,
)
from support import claimed_redis_db, data_tables, free_port, terminate

PG_ADMIN_DSN = os.environ.get("GLIMPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = "redis://127.0.0.1:6379"


async def _pg_reachable() -> bool:
    try:
        connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session (dropped at the end)."""
    if not asyncio.run(_pg_reachable()):
        if IN_CI:
            pytest.fail(
                f"PostgreSQL is required under CI=true and does not answer at {PG_ADMIN_DSN}"
            )
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    name = f"glimpse_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        database = Database.from_url(_pg_url(name), pool_size=1)
        try:
            await migrate.upgrade(database)
        finally:
            await database.dispose()

    async def drop() -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(create())
    yield _pg_url(name)
    asyncio.run(drop())


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A PostgreSQL database with no schema at all, for this test alone (dropped after)."""
    if not asyncio.run(_pg_reachable()):
        if IN_CI:
            pytest.fail(
                f"PostgreSQL is required under CI=true and does not answer at {PG_ADMIN_DSN}"
            )
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    name = f"glimpse_empty_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_url(database: str) -> str:
    base = sa.engine.make_url(PG_ADMIN_DSN)
    return base.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database-backed test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'glimpse.sqlite'}"
    url: str = request.getfixturevalue("pg_template")
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test: a copy takes a millisecond, running the
    migrations a tenth of a second or more, before each of ~500 tests."""
    path = tmp_path_factory.mktemp("sqlite-template") / "glimpse.sqlite"

    async def migrated() -> None:
        template = Database.from_url(f"sqlite:///{path}", pool_size=1)
        try:
            await migrate.upgrade(template)
        finally:
            await template.dispose()

    asyncio.run(migrated())
    return path


@pytest.fixture
async def database(database_url: str, sqlite_template: Path) -> AsyncIterator[Database]:
    url = sa.engine.make_url(database_url)
    sqlite_file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
    if sqlite_file is not None and not sqlite_file.exists():
        shutil.copyfile(sqlite_template, sqlite_file)
    database = Database.from_url(database_url, pool_size=5)
    if sqlite_file is not None:
        await migrate.upgrade(database)  # a no-op on the copy; a file made before is migrated
    else:
        # One migrated database per session; each test starts from empty tables. DELETE, not
        # TRUNCATE: on tables of a few rows it takes milliseconds where TRUNCATE, which makes
        # new files and syncs them, takes a quarter to half a second, before each of ~500 tests.
        async with database.write() as session:
            for table in data_tables():
                await session.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - our names
    yield database
    await database.dispose()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def make(config_file: Path | None = None, **overrides: Any) -> Settings:
        overrides.setdefault("database", {"connection": database_url})
        overrides.setdefault("glance_store", {"filesystem_store_datadir": str(tmp_path / "images")})
        # Job messages the API sends land in this test's folder, not the working directory.
        overrides.setdefault("celery", {"broker_data_dir": str(tmp_path / "broker")})
        stores = overrides.setdefault("stores", {})
        for store_id in RESERVED_STORES:
            stores.setdefault(store_id, {"filesystem_store_datadir": str(tmp_path / store_id)})
        return load_settings(config_file, **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client_for(
    database: Database,  # noqa: ARG001 -- requested so the schema exists before the app starts
) -> AsyncIterator[Callable[[Settings], Any]]:
    """Open an httpx client on a fresh app for the given settings (lifespan included)."""
    stack: list[Any] = []

    async def open_client(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://glimpse.test",
            headers={"Accept": "application/json"},
        )
        stack.append((client, lifespan))
        return client

    yield open_client
    for client, lifespan in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(client_for: Callable[[Settings], Any], settings: Settings) -> httpx.AsyncClient:
    result: httpx.AsyncClient = await client_for(settings)
    return result


# -- loopback servers the stores talk to ------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _s3_clients_closed() -> Iterator[None]:
    yield
    close_s3_clients()


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
        yield MotoServer(endpoint=endpoint, host=f"127.0.0.1:{port}", log=log)
    finally:
        terminate(process, timeout=15)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    with serving_http(tmp_path / "http-root") as server:
        yield server


# -- Redis (the production broker) ----------------------------------------------------------


def _redis_answers() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A flushed database of the machine's Redis (1-14) that this test alone holds."""
    if not _redis_answers():
        if IN_CI:
            pytest.fail("Redis is required under CI=true and does not answer on 127.0.0.1:6379")
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    with claimed_redis_db(REDIS_URL) as url:
        yield url


# -- RabbitMQ (the other production broker) -------------------------------------------------

AMQP_PORT = 5672


def _rabbitmq_answers() -> bool:
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}//", connect_timeout=3) as conn:
        try:
            conn.ensure_connection(max_retries=1)
        except (OSError, kombu.exceptions.OperationalError):
            return False
    return True


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """An amqp:// URL on a virtual host of the machine's RabbitMQ made for this test alone."""
    if shutil.which("rabbitmqctl") is None or not _rabbitmq_answers():
        if IN_CI:
            pytest.fail(f"RabbitMQ is required under CI=true and does not answer on {AMQP_PORT}")
        pytest.skip(f"RabbitMQ does not answer on 127.0.0.1:{AMQP_PORT}")
    vhost = f"glimpse-test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


# -- pytest-xdist (make test's workers) ----------------------------------------------------------


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (make test), with the keystone directory as one file: one worker runs a
    whole file, so a module's servers (a cluster, a uvicorn server) start once, and the whole
    keystone directory, so one Keystone and one Barbican start (and their virtualenvs are built
    once). Other --dist modes keep xdist's own schedulers. (xdist's loadgroup cannot serve: it
    renames node ids in a way pytest 9 no longer sees.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # noqa: PLC0415 - only under xdist

    class KeystoneAsOneFile(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/keystone" if path.startswith("tests/keystone/") else path

    return KeystoneAsOneFile(config, log)
