"""One real Keystone per test session, with the users and projects the keystone tests use.

- service project `service`: user `glimpse` (roles service, admin): Glimpse's own credentials
- project `alpha`: `alice` (member), `rita` (reader); project `beta`: `bob` (member)
- project `admin`: Keystone's bootstrap `admin` (admin)
- the catalog lists `image` at the port the uvicorn server of test_keystone_clients.py uses,
  and `key-manager` at the real Barbican (barbican_server.py) once a test asks for it

Keystone and Barbican are installed into their own virtualenvs (see keystone_server.py and
barbican_server.py). Under CI=true a failure to set either up fails the tests; elsewhere they are
skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from barbican_server import BarbicanEnv, SecretsApi, start_barbican
from keystone_server import (
    ADMIN_PASSWORD,
    KeystoneAdmin,
    KeystoneEnv,
    KeystoneProcess,
    SetupError,
    User,
    ensure_venv,
    free_port,
    start_keystone,
)

from glimpse.config import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = "redis://127.0.0.1:6379/15"  # the worker tests flush databases 1-14


def _unavailable(reason: str, server: str = "Keystone") -> None:
    if IN_CI:
        pytest.fail(f"{server} is required under CI=true: {reason}")
    pytest.skip(f"{server} could not be set up here: {reason}")


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneEnv]:
    workdir = tmp_path_factory.mktemp("keystone")
    try:
        server = start_keystone(ensure_venv(), workdir)
    except (SetupError, OSError) as exc:
        _unavailable(str(exc))
        raise  # unreachable: _unavailable always raises
    admin = KeystoneAdmin(server.url)
    try:
        env = _populate(server, admin)
    except SetupError as exc:
        admin.close()
        server.stop()
        _unavailable(f"{exc}\n{server.log()[-4000:]}")
        raise  # unreachable: _unavailable always raises
    try:
        yield env
    finally:
        admin.close()
        server.stop()


@pytest.fixture(scope="session")
def barbican_server(
    tmp_path_factory: pytest.TempPathFactory, keystone: KeystoneEnv
) -> Iterator[BarbicanEnv]:
    """One real Barbican per session, authenticating against the session's Keystone."""
    workdir = tmp_path_factory.mktemp("barbican")
    try:
        server = start_barbican(workdir, keystone.url, keystone.service)
        keystone.admin.register_service("key-manager", "barbican", server.url)
    except (SetupError, OSError) as exc:
        _unavailable(str(exc), "Barbican")
        raise  # unreachable: _unavailable always raises
    with httpx.Client(timeout=30.0) as http:
        try:
            yield BarbicanEnv(server, SecretsApi(server.url, http))
        finally:
            server.stop()


def _populate(server: KeystoneProcess, admin: KeystoneAdmin) -> KeystoneEnv:
    admin.login()
    admin.fix_identity_endpoint()
    glimpse_port = free_port()
    admin.register_image_service(f"http://127.0.0.1:{glimpse_port}")
    root_id = admin.find("users", "admin") or ""
    root = User("admin", ADMIN_PASSWORD, root_id, "admin", admin.project("admin"))
    return KeystoneEnv(
        server=server,
        admin=admin,
        service=admin.user("glimpse", "service", ["service", "admin"]),
        alice=admin.user("alice", "alpha", ["member", "reader"]),
        rita=admin.user("rita", "alpha", ["reader"]),
        bob=admin.user("bob", "beta", ["member", "reader"]),
        root=root,
        glimpse_port=glimpse_port,
    )


def keystone_options(env: KeystoneEnv, **overrides: Any) -> dict[str, Any]:
    """[keystone_authtoken] for Glimpse as the `glimpse` service user."""
    return {
        "auth_url": env.url,
        "www_authenticate_uri": env.url.removesuffix("/v3"),
        "auth_type": "password",
        "username": env.service.name,
        "password": env.service.password,
        "project_name": env.service.project,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        **overrides,
    }


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Identity does not depend on the database: SQLite only here."""
    return f"sqlite:///{tmp_path / 'glimpse.sqlite'}"


@pytest.fixture
def keystone_settings(
    make_settings: Callable[..., Settings], keystone: KeystoneEnv
) -> Callable[..., Settings]:
    def make(**options: Any) -> Settings:
        return make_settings(
            auth_strategy="keystone", keystone_authtoken=keystone_options(keystone, **options)
        )

    return make


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis is required under CI=true and does not answer on 127.0.0.1:6379")
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    finally:
        client.close()
    return REDIS_URL
