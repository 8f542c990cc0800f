"""The `openstack` CLI (python-openstackclient) with Keystone passwords, as a new user runs it,
against glimpse-api and glimpse-worker: image create/list/show/set/save/delete, image import
(glance-direct, web-download, copy-image), image member, image task and image metadef commands.

Glimpse reads a glance-api.conf (`auth_strategy = keystone`, two file stores and an http store,
the three import methods); Keystone's catalog lists it as the `image` service, where the CLI
finds it. A loopback web server holds the web-download source.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from keystone_server import KeystoneEnv, User

from support import command, environment, terminate

pytestmark = [pytest.mark.keystone, pytest.mark.compat]

START_TIMEOUT = 90.0
TIMEOUT = 180  # seconds for one openstack command (--wait included)
DATA = os.urandom(256 * 1024)

GLANCE_API_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
auth_strategy = keystone
enabled_backends = fast:file, cheap:file, web:http
enabled_import_methods = [glance-direct,web-download,copy-image]

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {workdir}/fast/

[cheap]
filesystem_store_datadir = {workdir}/cheap/

[os_glance_staging_store]
filesystem_store_datadir = {workdir}/staging/

[os_glance_tasks_store]
filesystem_store_datadir = {workdir}/tasks/

[import_filtering_opts]
allowed_hosts = [127.0.0.1]
allowed_ports = [{web_port}]

[database]
connection = sqlite:///{workdir}/glimpse.sqlite

[celery]
broker_data_dir = {workdir}/broker
worker_concurrency = 1

[keystone_authtoken]
www_authenticate_uri = {www}
auth_url = {auth_url}
auth_type = password
username = {username}
password = {password}
project_name = {project}
user_domain_name = Default
project_domain_name = Default
"""


@dataclass(frozen=True)
class Deployment:
    url: str
    web_base: str  # serves DATA as /disk.raw
    workdir: Path


@pytest.fixture(scope="module")
def web_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("osc-web")
    (root / "disk.raw").write_bytes(DATA)
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="osc-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def glimpse(
    keystone: KeystoneEnv, web_base: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """glimpse-api (on the port Keystone's catalog names) and one glimpse-worker."""
    workdir = tmp_path_factory.mktemp("osc-glimpse")
    conf = workdir / "glance-api.conf"
    conf.write_text(
        GLANCE_API_CONF.format(
            port=keystone.glimpse_port,
            workdir=workdir,
            web_port=web_base.rsplit(":", 1)[1],
            www=keystone.url.removesuffix("/v3"),
            auth_url=keystone.url,
            username=keystone.service.name,
            password=keystone.service.password,
            project=keystone.service.project,
        )
    )
    env = environment(GLIMPSE_CONFIG=str(conf), GLIMPSE_LOG_LEVEL="INFO")
    metadefs = Path(__file__).resolve().parents[2] / "etc" / "metadefs"
    for step in (["db", "sync"], ["db", "load_metadefs", "--path", str(metadefs)]):
        done = subprocess.run(
            [command("glimpse-manage"), *step],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    processes = []
    for name, args in (("glimpse-api", []), ("glimpse-worker", ["--loglevel=INFO"])):
        with (workdir / f"{name}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [command(name), *args],
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    url = f"http://127.0.0.1:{keystone.glimpse_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert processes[0].poll() is None, (workdir / "glimpse-api.log").read_text()
                assert time.monotonic() < deadline, "glimpse-api did not start"
                try:
                    if client.get(f"{url}/versions").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        yield Deployment(url, web_base, workdir)
    finally:
        for process in processes:
            terminate(process)


class Cli:
    """`openstack` as one Keystone user, password auth, the image endpoint from the catalog."""

    def __init__(self, keystone: KeystoneEnv, user: User, workdir: Path) -> None:
        self.workdir = workdir
        self.args = [
            command("openstack"),
            "--os-auth-type",
            "password",
            "--os-auth-url",
            keystone.url,
            "--os-identity-api-version",
            "3",
            "--os-image-api-version",
            "2",
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

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        # A terminal on stdin, as for a user at a prompt: `image create` without --file would
        # otherwise upload whatever stdin holds.
        terminal, stdin = pty.openpty()
        try:
            return subprocess.run(
                [*self.args, *args],
                env=env,
                cwd=self.workdir,
                stdin=stdin,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        finally:
            os.close(stdin)
            os.close(terminal)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"openstack {' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-f", "json"))


@pytest.fixture(scope="module")
def alice(keystone: KeystoneEnv, glimpse: Deployment) -> Cli:
    return Cli(keystone, keystone.alice, glimpse.workdir)


@pytest.fixture(scope="module")
def bob(keystone: KeystoneEnv, glimpse: Deployment) -> Cli:
    return Cli(keystone, keystone.bob, glimpse.workdir)


@pytest.fixture(scope="module")
def admin(keystone: KeystoneEnv, glimpse: Deployment) -> Cli:
    return Cli(keystone, keystone.root, glimpse.workdir)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("osc-data") / "disk.raw"
    path.write_bytes(DATA)
    return path


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


RAW = ("--disk-format", "raw", "--container-format", "bare")


def test_image_create_list_show_set_save_delete(
    alice: Cli, data_file: Path, tmp_path: Path
) -> None:
    created = alice.json("image", "create", *RAW, "--file", str(data_file), "osc-lifecycle")
    image_id = created["id"]
    assert (created["status"], created["checksum"], created["size"]) == (
        "active",
        md5(DATA),
        len(DATA),
    )
    listed = alice.json("image", "list")
    assert {"ID": image_id, "Name": "osc-lifecycle", "Status": "active"} in listed
    alice.ok(
        "image", "set", "--property", "color=blue", "--tag", "osc", "--min-ram", "64", image_id
    )
    shown = alice.json("image", "show", image_id)
    assert (shown["name"], shown["min_ram"], shown["tags"]) == ("osc-lifecycle", 64, ["osc"])
    assert shown["properties"]["color"] == "blue"
    assert shown["properties"]["stores"] == "fast"
    saved = tmp_path / "saved.raw"
    alice.ok("image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == DATA
    alice.ok("image", "delete", image_id)
    gone = alice.run("image", "show", image_id)
    assert gone.returncode == 1
    assert "No Image found" in gone.stderr


def test_image_import_every_method(
    alice: Cli, admin: Cli, glimpse: Deployment, data_file: Path
) -> None:
    info = alice.json("image", "import", "info")
    assert info["import-methods"] == ["glance-direct", "web-download", "copy-image"]
    stores = alice.json("image", "stores", "list")
    assert sorted(store["ID"] for store in stores) == ["cheap", "fast", "web"]

    staged = alice.json("image", "create", *RAW, "osc-glance-direct")["id"]
    alice.ok("image", "stage", "--file", str(data_file), staged)
    assert alice.json("image", "show", staged)["status"] == "uploading"
    alice.ok("image", "import", "--method", "glance-direct", "--wait", staged)

    fetched = alice.json("image", "create", *RAW, "osc-web-download")["id"]
    uri = f"{glimpse.web_base}/disk.raw"
    alice.ok("image", "import", "--method", "web-download", "--uri", uri, "--wait", fetched)

    for image_id in (staged, fetched):
        shown = alice.json("image", "show", image_id)
        assert (shown["status"], shown["checksum"], shown["size"]) == (
            "active",
            md5(DATA),
            len(DATA),
        )
        assert shown["properties"]["stores"] == "fast"

    # copy-image is for admins by default. The CLI does not report the API's refusal (the
    # SDK ignores the status of the import call): nothing is copied.
    alice.ok("image", "import", staged, "--method", "copy-image", "--store", "cheap")
    assert alice.json("image", "show", staged)["properties"]["stores"] == "fast"
    assert not (glimpse.workdir / "cheap" / staged).exists()
    admin.ok("image", "import", staged, "--wait", "--method", "copy-image", "--store", "cheap")
    deadline = time.monotonic() + TIMEOUT
    while admin.json("image", "show", staged)["properties"]["stores"] != "cheap,fast":
        assert time.monotonic() < deadline, admin.json("image", "show", staged)
        time.sleep(0.5)
    copied = (glimpse.workdir / "cheap" / staged).read_bytes()
    assert copied == DATA

    # glance-download is not among the enabled methods here: the CLI reads /v2/info/import
    # and refuses it before any import call; the image stays queued.
    queued = alice.json("image", "create", *RAW, "osc-glance-download")["id"]
    remote = alice.run(
        "image", "import", queued, "--method", "glance-download",
        "--remote-image", staged, "--remote-region", "RegionTwo",
        "--remote-service-interface", "public",
    )  # fmt: skip
    assert remote.returncode == 1
    assert remote.stderr.strip() == (
        "The 'glance-download' import method is not supported by this deployment. "
        "Supported: glance-direct, web-download, copy-image"
    )
    assert alice.json("image", "show", queued)["status"] == "queued"


def test_image_member_commands(alice: Cli, bob: Cli, keystone: KeystoneEnv) -> None:
    image_id = alice.json("image", "create", *RAW, "--shared", "osc-shared")["id"]
    beta = keystone.bob.project_id
    added = alice.json("image", "add", "project", image_id, beta)
    assert (added["image_id"], added["member_id"], added["status"]) == (image_id, beta, "pending")
    members = alice.json("image", "member", "list", image_id)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(beta, "pending")]
    got = alice.json("image", "member", "get", image_id, beta)
    assert (got["member_id"], got["status"]) == (beta, "pending")
    bob.ok("image", "set", "--accept", image_id)
    assert bob.json("image", "member", "get", image_id, beta)["status"] == "accepted"
    assert image_id in {image["ID"] for image in bob.json("image", "list", "--shared")}
    bob.ok("image", "set", "--reject", image_id)
    assert bob.json("image", "member", "get", image_id, beta)["status"] == "rejected"
    alice.ok("image", "remove", "project", image_id, beta)
    assert alice.json("image", "member", "list", image_id) == []
    assert bob.run("image", "show", image_id).returncode == 1


def test_image_task_commands(alice: Cli, admin: Cli, glimpse: Deployment) -> None:
    image_id = alice.json("image", "create", *RAW, "osc-task")["id"]
    uri = f"{glimpse.web_base}/disk.raw"
    alice.ok("image", "import", "--method", "web-download", "--uri", uri, "--wait", image_id)
    tasks = admin.json("image", "task", "list")
    ids = [task["ID"] for task in tasks if task["Type"] == "api_image_import"]
    assert ids
    shown = [admin.json("image", "task", "show", task_id) for task_id in ids]
    [ours] = [task for task in shown if task["input"]["image_id"] == image_id]
    assert (ours["type"], ours["status"], ours["owner_id"]) == (
        "api_image_import",
        "success",
        alice_project(alice, image_id),
    )
    assert ours["input"]["import_req"]["method"] == {"name": "web-download", "uri": uri}
    # Listing tasks is for admins by default, as in Glance.
    assert alice.run("image", "task", "list").returncode == 1


def alice_project(alice: Cli, image_id: str) -> str:
    owner: str = alice.json("image", "show", image_id)["owner"]
    return owner


def test_image_metadef_commands(admin: Cli, alice: Cli) -> None:
    namespaces = {ns["namespace"] for ns in admin.json("image", "metadef", "namespace", "list")}
    assert "OS::Compute::Hypervisor" in namespaces  # the catalog of etc/metadefs
    types = {rt["Name"] for rt in admin.json("image", "metadef", "resource", "type", "list")}
    assert "OS::Glance::Image" in types

    ns = "OSC::Test"
    created = admin.json(
        "image", "metadef", "namespace", "create", "--display-name", "OSC test", "--private", ns
    )
    assert (created["namespace"], created["visibility"]) == (ns, "private")
    # A namespace update replaces it whole (as in Glance): the display name is sent again.
    admin.ok(
        "image", "metadef", "namespace", "set",
        "--display-name", "OSC test", "--description", "from the CLI", ns,
    )  # fmt: skip
    shown = admin.json("image", "metadef", "namespace", "show", ns)
    assert (shown["display_name"], shown["description"]) == ("OSC test", "from the CLI")
    assert alice.run("image", "metadef", "namespace", "show", ns).returncode == 1  # private

    prop = admin.json(
        "image", "metadef", "property", "create",
        "--name", "speed", "--title", "Speed", "--type", "string",
        "--schema", '{"enum": ["slow", "fast"]}', ns,
    )  # fmt: skip
    assert (prop["name"], prop["title"], prop["type"]) == ("speed", "Speed", "string")
    admin.ok(
        "image", "metadef", "property", "set",
        "--name", "speed", "--title", "Pace", "--type", "string", ns, "speed",
    )  # fmt: skip
    shown_prop = admin.json("image", "metadef", "property", "show", ns, "speed")
    assert (shown_prop["title"], shown_prop["type"]) == ("Pace", "string")
    listed = admin.json("image", "metadef", "property", "list", ns)
    assert [p["name"] for p in listed] == ["speed"]

    obj = admin.json("image", "metadef", "object", "create", "--namespace", ns, "Engine")
    assert obj["name"] == "Engine"
    admin.ok("image", "metadef", "object", "update", "--name", "Motor", ns, "Engine")
    assert admin.json("image", "metadef", "object", "show", ns, "Motor")["name"] == "Motor"
    assert [o["name"] for o in admin.json("image", "metadef", "object", "list", ns)] == ["Motor"]

    admin.ok(
        "image", "metadef", "resource", "type", "association", "create", ns, "OS::Glance::Image"
    )
    associations = admin.json("image", "metadef", "resource", "type", "association", "list", ns)
    assert [a["Name"] for a in associations] == ["OS::Glance::Image"]
    admin.ok(
        "image", "metadef", "resource", "type", "association", "delete", ns, "OS::Glance::Image"
    )

    admin.ok("image", "metadef", "object", "delete", ns, "Motor")
    admin.ok("image", "metadef", "property", "delete", ns, "speed")
    admin.ok("image", "metadef", "namespace", "delete", ns)
    assert admin.run("image", "metadef", "namespace", "show", ns).returncode == 1
