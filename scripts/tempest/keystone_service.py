"""Keystone for the tempest run: configured, bootstrapped, served by gunicorn on loopback, and
populated with Glimpse's service user and the catalog entry tempest finds the image API by."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from processes import HarnessError, Supervisor, free_port, run_logged

HERE = Path(__file__).resolve().parent
ADMIN_PASSWORD = "tempest-admin-pw"  # noqa: S105 -- a loopback Keystone that lives for one run
SERVICE_USER = "glimpse"
SERVICE_PASSWORD = "glimpse-service-pw"  # noqa: S105 -- same
PLACEHOLDER_URL = "http://127.0.0.1:1/v3"  # the bootstrapped identity endpoint, fixed at start

KEYSTONE_CONF = """\
[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///{workdir}/keystone.sqlite

[identity]
# bcrypt's default cost makes each of tempest's many password logins take a third of a second
password_hash_rounds = 4

[token]
provider = fernet
expiration = 14400

[fernet_tokens]
key_repository = {workdir}/fernet-keys

[fernet_receipts]
key_repository = {workdir}/fernet-keys

[credential]
key_repository = {workdir}/credential-keys
"""


@dataclass(frozen=True)
class Keystone:
    url: str  # http://127.0.0.1:<port>/v3
    admin_password: str = ADMIN_PASSWORD
    service_user: str = SERVICE_USER
    service_password: str = SERVICE_PASSWORD


def _write_conf(workdir: Path) -> Path:
    conf = workdir / "keystone.conf"
    conf.write_text(KEYSTONE_CONF.format(workdir=workdir))
    return conf


def _bootstrap(bin_dir: Path, workdir: Path) -> None:
    """Schema, keys and the admin user, as keystone-manage sets them up, in `workdir`."""
    for name in ("fernet-keys", "credential-keys"):
        (workdir / name).mkdir()
    manage = [str(bin_dir / "keystone-manage"), "--config-file", str(_write_conf(workdir))]
    owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name]
    owner += ["--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    # Each keystone-manage costs seconds of imports: the independent steps run side by side.
    steps = [["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner]]
    running = []
    for step in steps:
        log = workdir / f"keystone-manage-{step[0]}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([*manage, *step], stdout=out, stderr=out)  # noqa: S603 -- our own command
        running.append((step[0], log, process))
    for name, log, process in running:
        if process.wait(timeout=900) != 0:
            raise HarnessError(f"keystone-manage {name} failed:\n{log.read_text()[-3000:]}")
    bootstrap = ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD]
    bootstrap += ["--bootstrap-public-url", PLACEHOLDER_URL, "--bootstrap-region-id", "RegionOne"]
    run_logged([*manage, *bootstrap], workdir / "keystone-manage-bootstrap.log")


def bootstrapped_template(bin_dir: Path) -> Path:
    """A bootstrapped Keystone (SQLite and keys) made once per virtualenv and copied per run."""
    template = bin_dir.parent.with_name(bin_dir.parent.name + "-state")
    if (template / ".complete").exists():
        return template
    shutil.rmtree(template, ignore_errors=True)
    building = template.with_name(f"{template.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    _bootstrap(bin_dir, building)
    (building / "keystone.conf").unlink()  # names the building directory
    (building / ".complete").write_text("")
    building.rename(template)
    return template


def start(bin_dir: Path, workdir: Path, supervisor: Supervisor) -> Keystone:
    shutil.copytree(bootstrapped_template(bin_dir), workdir)
    conf = _write_conf(workdir)
    port = free_port()
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    # One synchronous worker: SQLite takes one writer at a time, and a single process
    # serialises them; Keystone answers within milliseconds, so tempest does not wait.
    gunicorn = [str(bin_dir / "gunicorn"), "--no-control-socket", "--workers", "1"]
    gunicorn += ["--bind", f"127.0.0.1:{port}", "--timeout", "120", "--chdir", str(HERE / "wsgi")]
    supervisor.start("keystone", [*gunicorn, "keystone_wsgi:application"], env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}/v3"
    supervisor.wait_http("keystone", url)
    return Keystone(url=url)


def _password_auth(user: str, password: str, project: str) -> dict[str, Any]:
    domain = {"id": "default"}
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": domain, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": domain}},
        }
    }


class _Admin:
    """Keystone's REST API as the bootstrap admin."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url = http, url
        login = http.post(
            f"{url}/auth/tokens", json=_password_auth("admin", ADMIN_PASSWORD, "admin")
        )
        if login.status_code != httpx.codes.CREATED:
            raise HarnessError(f"admin login: {login.status_code} {login.text}")
        self.headers = {"X-Auth-Token": login.headers["X-Subject-Token"]}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:  # noqa: ANN401 -- a JSON document
        response = self.http.request(method, f"{self.url}{path}", json=body, headers=self.headers)
        if response.status_code >= httpx.codes.BAD_REQUEST:
            raise HarnessError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def ensure(self, kind: str, name: str, body: dict[str, Any]) -> str:
        found = self.call("GET", f"/{kind}?name={name}")[kind]
        if found:
            return str(found[0]["id"])
        singular = kind.removesuffix("s")
        return str(
            self.call("POST", f"/{kind}", {singular: {"name": name, **body}})[singular]["id"]
        )


def populate(keystone: Keystone, image_endpoint: str, remote_endpoint: str) -> None:
    """Roles tempest's dynamic credentials use, Glimpse's service user, and the catalog: the
    image service, and a second API node as `image_remote` (tempest's alternate endpoint)."""
    with httpx.Client(timeout=30.0) as http:
        admin = _Admin(http, keystone.url)
        for endpoint in admin.call("GET", "/endpoints")["endpoints"]:
            if endpoint["url"] == PLACEHOLDER_URL:
                admin.call(
                    "PATCH", f"/endpoints/{endpoint['id']}", {"endpoint": {"url": keystone.url}}
                )
        roles = {
            name: admin.ensure("roles", name, {})
            for name in ("admin", "member", "reader", "manager", "service")
        }
        project = admin.ensure("projects", "service", {"domain_id": "default"})
        user = admin.ensure(
            "users",
            keystone.service_user,
            {"domain_id": "default", "password": keystone.service_password},
        )
        for role in ("admin", "service"):
            admin.call("PUT", f"/projects/{project}/users/{user}/roles/{roles[role]}")
        for kind, name, url in (
            ("image", "glance", image_endpoint),
            ("image_remote", "glance-remote", remote_endpoint),
        ):
            service = admin.call(
                "POST", "/services", {"service": {"type": kind, "name": name, "enabled": True}}
            )["service"]["id"]
            for interface in ("public", "internal", "admin"):
                body = {
                    "service_id": service,
                    "interface": interface,
                    "url": url,
                    "region_id": "RegionOne",
                }
                admin.call("POST", "/endpoints", {"endpoint": body})
