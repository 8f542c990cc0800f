"""The `glance` CLI and openstacksdk with Keystone passwords against a real glimpse-api.

The server reads a glance-api.conf with `[paste_deploy] flavor = keystone` and the service
user's `[keystone_authtoken]`; Keystone's catalog lists it as the `image` service.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from keystone_server import KeystoneEnv, User
from openstack import connection, exceptions

from support import command, environment, stop

pytestmark = [pytest.mark.keystone, pytest.mark.compat]

START_TIMEOUT = 90.0
TIMEOUT = 120  # seconds for one glance command

GLANCE_API_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}

[database]
connection = sqlite:///{workdir}/glimpse.sqlite

[glance_store]
filesystem_store_datadir = {workdir}/images

[celery]
broker_data_dir = {workdir}/broker

[keystone_authtoken]
www_authenticate_uri = {www}
auth_url = {auth_url}
auth_type = password
username = {username}
password = {password}
project_name = {project}
user_domain_name = Default
project_domain_name = Default
service_token_roles = service
service_token_roles_required = true
token_cache_time = 300
memcached_servers = 127.0.0.1:11211

[paste_deploy]
flavor = keystone
"""


@pytest.fixture(scope="module")
def glimpse_url(keystone: KeystoneEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """glimpse-api under uvicorn on the port Keystone's catalog names."""
    workdir = tmp_path_factory.mktemp("keystone-glimpse")
    conf = workdir / "glance-api.conf"
    conf.write_text(
        GLANCE_API_CONF.format(
            port=keystone.glimpse_port,
            workdir=workdir,
            www=keystone.url.removesuffix("/v3"),
            auth_url=keystone.url,
            username=keystone.service.name,
            password=keystone.service.password,
            project=keystone.service.project,
        )
    )
    env = environment(GLIMPSE_LOG_LEVEL="INFO")
    sync = subprocess.run(
        [command("glimpse-manage"), "--config-file", str(conf), "db", "sync"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    process = subprocess.Popen(
        [command("glimpse-api"), "--config-file", str(conf)],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{keystone.glimpse_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert process.poll() is None, f"glimpse-api exited: {stop(process)[1]}"
                assert time.monotonic() < deadline, f"glimpse-api did not start: {stop(process)}"
                try:
                    if client.get(f"{url}/versions").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        yield url
    finally:
        stop(process)


def _glance_args(keystone: KeystoneEnv, user: User, image_url: str | None) -> list[str]:
    args = [
        command("glance"),
        "--os-auth-url",
        keystone.url,
        "--os-username",
        user.name,
        "--os-password",
        user.password,
        "--os-project-name",
        user.project,
        "--os-user-domain-name",
        "Default",
        "--os-project-domain-name",
        "Default",
        "--os-region-name",
        "RegionOne",
    ]
    if image_url is not None:
        args += ["--os-image-url", image_url]
    return args


def glance_all(
    keystone: KeystoneEnv, *commands: tuple[User, str | None, tuple[str, ...]]
) -> list[str]:
    """Run several `glance` commands side by side (each start-up costs seconds of imports)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    processes = [
        subprocess.Popen(
            [*_glance_args(keystone, user, image_url), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user, image_url, args in commands
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, f"{process.args}\n{stdout}\n{stderr}"
        outputs.append(stdout)
    return outputs


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")[1:-1]]


def properties(output: str) -> dict[str, str]:
    rows = [_cells(line) for line in output.splitlines() if line.startswith("|")]
    return {row[0]: row[1] for row in rows if row[0] and row[0] != "Property"}


def names(output: str) -> set[str]:
    rows = [_cells(line) for line in output.splitlines() if line.startswith("|")]
    return {row[1] for row in rows[1:]}


def test_glance_cli_with_keystone_passwords(
    keystone: KeystoneEnv, glimpse_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(300_000))
    name = f"ks-cli-{uuid.uuid4().hex[:8]}"
    (created,) = glance_all(
        keystone,
        (
            keystone.alice,
            glimpse_url,
            (
                "image-create",
                "--name",
                name,
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--file",
                str(data),
            ),
        ),
    )
    image = properties(created)
    assert image["status"] == "active"
    assert image["owner"] == keystone.alice.project_id
    assert image["size"] == "300000"
    # Alice with an explicit URL and through Keystone's catalog; Bob sees none of it.
    explicit, discovered, other = glance_all(
        keystone,
        (keystone.alice, glimpse_url, ("image-list",)),
        (keystone.alice, None, ("image-list",)),
        (keystone.bob, None, ("image-list",)),
    )
    assert name in names(explicit)
    assert name in names(discovered)
    assert name not in names(other)
    out = tmp_path / "out.raw"
    glance_all(
        keystone, (keystone.alice, None, ("image-download", "--file", str(out), image["id"]))
    )
    assert out.read_bytes() == data.read_bytes()


# openstacksdk warns about its own internals on every Connection and proxy call.
@pytest.mark.filterwarnings("ignore:Support for InfluxDB:openstack.warnings.RemovedInSDK60Warning")
@pytest.mark.filterwarnings(
    "ignore:The ignore_missing parameter of all find_:openstack.warnings.RemovedInSDK60Warning"
)
@pytest.mark.filterwarnings(
    "ignore:The _compute_attributes method:openstack.warnings.RemovedInSDK50Warning"
)
@pytest.mark.filterwarnings(
    "ignore:The 'service_type' parameter is unnecesary:openstack.warnings.RemovedInSDK50Warning"
)
def test_openstacksdk_with_keystone_passwords(
    keystone: KeystoneEnv, glimpse_url: str, tmp_path: Path
) -> None:
    def connect(user: User) -> connection.Connection:
        # No clouds.yaml, no OS_* variables: only these options.
        return connection.Connection(
            auth_type="password",
            auth={
                "auth_url": keystone.url,
                "username": user.name,
                "password": user.password,
                "project_name": user.project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            region_name="RegionOne",
        )

    alice, bob = connect(keystone.alice), connect(keystone.bob)
    try:
        # Found through Keystone's catalog, then keystoneauth's version discovery.
        assert alice.image.get_endpoint() == f"{glimpse_url}/v2/"
        payload = os.urandom(123_456)
        source = tmp_path / "sdk.raw"
        source.write_bytes(payload)
        name = f"ks-sdk-{uuid.uuid4().hex[:8]}"
        with source.open("rb") as data:
            image = alice.image.create_image(
                name=name, data=data, disk_format="raw", container_format="bare"
            )
        assert image.owner == keystone.alice.project_id
        assert alice.image.download_image(image).content == payload
        assert name in {i.name for i in alice.image.images()}
        assert name not in {i.name for i in bob.image.images()}
        with pytest.raises(exceptions.NotFoundException):
            bob.image.get_image(image.id)
    finally:
        alice.close()
        bob.close()
