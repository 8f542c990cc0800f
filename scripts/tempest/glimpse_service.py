"""Glimpse as tempest sees it: API, worker and scrubber on a fresh PostgreSQL database and a
Redis of their own, three stores, and a loopback web server for web-download and http locations."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet
from keystone_service import Keystone
from processes import HarnessError, Supervisor, free_port, run_logged

BIN = Path(sys.executable).parent  # the project's .venv
ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGES = ("cirros-0.6.2-x86_64-disk.img", "cirros-0.6.2-x86_64-uec.tar.gz")


@dataclass(frozen=True)
class Profile:
    """What the Glimpse under test offers, and so what tempest is told to test."""

    name: str
    show_multiple_locations: bool
    store_weights: bool
    image_cache: bool
    do_secure_hash: bool  # tempest runs the location import tests of one setting or the other


PROFILES = {
    "default": Profile(
        "default",
        show_multiple_locations=False,
        store_weights=False,
        image_cache=False,
        do_secure_hash=True,
    ),
    # The image cache API, store weights and locations: tempest's ImageCachingTest,
    # StoreWeightTest and ImageLocations(Admin)Test. Hashing stays on, as in Glance's own
    # runs of this profile (its do_secure_hash_true and hash-cancel tests run).
    "extended": Profile(
        "extended",
        show_multiple_locations=True,
        store_weights=True,
        image_cache=True,
        do_secure_hash=True,
    ),
}


@dataclass(frozen=True)
class Glimpse:
    url: str
    remote_url: str  # a second API node of the same deployment (tempest's image_remote)
    web_base: str  # the loopback web server holding the test images


def _admin_dsn(postgres_url: str) -> str:
    return postgres_url.rstrip("/") + "/postgres"


async def _execute(postgres_url: str, statement: str) -> None:
    try:
        connection = await asyncpg.connect(_admin_dsn(postgres_url), timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise HarnessError(f"PostgreSQL at {postgres_url}: {exc}") from exc
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database(postgres_url: str, name: str) -> str:
    """A fresh, empty database; its URL."""
    asyncio.run(_execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_execute(postgres_url, f'CREATE DATABASE "{name}"'))
    return f"{postgres_url.rstrip('/')}/{name}"


def drop_database(postgres_url: str, name: str) -> None:
    asyncio.run(_execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_test_images(directory: Path, log: Path) -> None:
    """tempest's http_image and http_qcow2_image: small real qcow2 files, since Glimpse checks
    data against its disk_format and tempest declares qcow2 for both."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise HarnessError("qemu-img is needed for the test images (apt-get install qemu-utils)")
    directory.mkdir(parents=True)
    first = directory / TEST_IMAGES[0]
    run_logged([qemu_img, "create", "-q", "-f", "qcow2", str(first), "1M"], log)
    for name in TEST_IMAGES[1:]:
        shutil.copy(first, directory / name)


def config(
    workdir: Path,
    *,
    profile: Profile,
    keystone: Keystone,
    database_url: str,
    broker_url: str,
    port: int,
    web_port: int,
) -> str:
    """glance-api.conf, written as Glance's documentation writes it."""
    stores = workdir / "stores"
    weights = {"cheap": 100, "fast": 50} if profile.store_weights else {}
    # tempest's import waiter compares `stores` with the sorted list of target stores, so
    # with weights the store read first must also sort first (cheap before fast).
    lines = [
        "[DEFAULT]",
        "bind_host = 127.0.0.1",
        f"bind_port = {port}",
        "auth_strategy = keystone",
        "enabled_backends = cheap:file, fast:file, web:http",
        "enabled_import_methods = [glance-direct,web-download,copy-image,glance-download]",
        f"show_multiple_locations = {profile.show_multiple_locations}",
        f"do_secure_hash = {profile.do_secure_hash}",
        "show_image_direct_url = False",
        "hashing_algorithm = sha512",
        "",
        "[glance_store]",
        "default_backend = fast",
        "",
    ]
    for store, description in (("cheap", "Cheap file store"), ("fast", "Fast file store")):
        lines += [f"[{store}]", f"filesystem_store_datadir = {stores / store}/"]
        lines.append(f'store_description = "{description}"')
        if store in weights:
            lines.append(f"weight = {weights[store]}")
        lines.append("")
    lines += [
        "[web]",
        'store_description = "Read-only http store"',
        "",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {stores / 'staging'}/",
        "",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {stores / 'tasks'}/",
        "",
        "[import_filtering_opts]",
        "# the web-download source and http locations are on the loopback web server, and",
        "# glance-download reads from the image endpoint of the region tempest names (this one)",
        "allowed_hosts = [127.0.0.1]",
        f"allowed_ports = [80,443,{web_port},{port}]",
        "",
        "[key_manager]",
        "# glance-download's worker acts with the caller's token, kept encrypted meanwhile",
        f"token_encryption_key = {Fernet.generate_key().decode()}",
        "",
        "[database]",
        f"connection = {database_url}",
        "",
        "[celery]",
        f"broker_url = {broker_url}",
        "worker_concurrency = 2",
        "",
        "[scrubber]",
        "wakeup_time = 30",
        "",
        "[keystone_authtoken]",
        f"www_authenticate_uri = {keystone.url.removesuffix('/v3')}",
        f"auth_url = {keystone.url}",
        "auth_type = password",
        f"username = {keystone.service_user}",
        f"password = {keystone.service_password}",
        "project_name = service",
        "user_domain_name = Default",
        "project_domain_name = Default",
        "service_token_roles_required = true",
    ]
    if profile.image_cache:
        # Each API node has a cache of its own, as in Glance: its directory and its name.
        at = lines.index("[glance_store]") - 1
        lines[at:at] = [
            f"image_cache_dir = {workdir / 'cache'}/",
            f"worker_self_reference_url = http://127.0.0.1:{port}",
        ]
    return "\n".join(lines) + "\n"


def remote_node_config(text: str, workdir: Path, port: int, remote_port: int) -> str:
    """The first node's glance-api.conf for the second node: its own port and, with the cache
    on, its own cache directory and name (each node's cache is its own)."""
    cache, remote_cache = workdir / "cache", workdir / "cache-remote"
    own = {
        f"bind_port = {port}\n": f"bind_port = {remote_port}\n",
        f"image_cache_dir = {cache}/\n": f"image_cache_dir = {remote_cache}/\n",
        f"worker_self_reference_url = http://127.0.0.1:{port}\n": (
            f"worker_self_reference_url = http://127.0.0.1:{remote_port}\n"
        ),
    }
    for first, second in own.items():
        text = text.replace(first, second, 1)
    return text


def start(
    workdir: Path,
    profile: Profile,
    keystone: Keystone,
    database_url: str,
    supervisor: Supervisor,
) -> Glimpse:
    """Redis, the web server, then glimpse-api, glimpse-worker and glimpse-scrubber --daemon."""
    redis_port, web_port, port, remote_port = free_port(), free_port(), free_port(), free_port()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise HarnessError(
            "redis-server is needed for the worker's broker (apt-get install redis-server)"
        )
    (workdir / "redis").mkdir()
    redis_args = [redis_server, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", ""]
    redis_args += ["--appendonly", "no", "--dir", str(workdir / "redis")]
    supervisor.start("redis", redis_args, env=dict(os.environ), cwd=workdir)

    web_root = workdir / "web"
    make_test_images(web_root, supervisor.logs / "setup.log")
    web_args = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    web_args += ["--directory", str(web_root), str(web_port)]
    supervisor.start("web", web_args, env=dict(os.environ), cwd=workdir)

    conf = workdir / "glance-api.conf"
    broker = f"redis://127.0.0.1:{redis_port}/0"
    conf.write_text(
        config(
            workdir,
            profile=profile,
            keystone=keystone,
            database_url=database_url,
            broker_url=broker,
            port=port,
            web_port=web_port,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    env["GLIMPSE_CONFIG"] = str(conf)
    manage = [str(BIN / "glimpse-manage"), "db"]
    run_logged([*manage, "sync"], supervisor.logs / "setup.log", env=env)
    # The catalog of metadata definitions, as a deployment loads it (tempest lists it).
    metadefs = ["load_metadefs", "--path", str(ROOT / "etc" / "metadefs")]
    run_logged([*manage, *metadefs], supervisor.logs / "setup.log", env=env)
    supervisor.start("glimpse-api", [str(BIN / "glimpse-api")], env=env, cwd=workdir)
    # A second API node on the same database, broker and staging directory: tempest stages
    # through one node and imports or deletes through the other (its image_remote tests).
    remote_conf = workdir / "glance-api-remote.conf"
    remote_conf.write_text(remote_node_config(conf.read_text(), workdir, port, remote_port))
    remote_env = {**env, "GLIMPSE_CONFIG": str(remote_conf)}
    supervisor.start("glimpse-api-remote", [str(BIN / "glimpse-api")], env=remote_env, cwd=workdir)
    supervisor.start(
        "glimpse-worker", [str(BIN / "glimpse-worker"), "--loglevel=INFO"], env=env, cwd=workdir
    )
    supervisor.start(
        "glimpse-scrubber", [str(BIN / "glimpse-scrubber"), "--daemon"], env=env, cwd=workdir
    )
    url = f"http://127.0.0.1:{port}"
    web_base = f"http://127.0.0.1:{web_port}"
    supervisor.wait_http("the web server", f"{web_base}/{TEST_IMAGES[0]}")
    supervisor.wait_http("glimpse-api", f"{url}/versions")
    remote_url = f"http://127.0.0.1:{remote_port}"
    supervisor.wait_http("glimpse-api-remote", f"{remote_url}/versions")
    return Glimpse(url=url, remote_url=remote_url, web_base=web_base)
