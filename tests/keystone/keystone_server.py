"""A real Keystone for the tests: its virtualenv, its configuration, its process, its REST API.

The virtualenv is built with the repository's uv from requirements.txt and kept under
`.cache/keystone/<hash of requirements.txt>/` (gitignored), so later runs reuse it. Keystone runs
on SQLite with fernet tokens, set up with keystone-manage (db_sync, fernet_setup,
credential_setup, bootstrap) once into `<hash>-state/`; each test session serves a copy of that
state through serve.py on a free loopback port.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
CACHE = ROOT / ".cache" / "keystone"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
DEFAULT_DOMAIN = {"id": "default"}
ADMIN_PASSWORD = "keystone-admin-pw"


class SetupError(Exception):
    """Keystone could not be installed, configured or started here."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _uv() -> str:
    bundled = ROOT / ".tools" / "bin" / "uv"
    found = str(bundled) if bundled.exists() else shutil.which("uv")
    if found is None:
        raise SetupError("no uv: run `make test` (it bootstraps uv into .tools/)")
    return found


def _run(
    args: list[str], log: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SetupError(f"{args[0]} {args[1]} failed ({result.returncode}):\n{tail}")


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One holder at a time across processes: test processes running side by side
    (pytest-xdist's workers) would otherwise remove and rebuild the same cached directory under
    each other."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_venv(requirements: Path = REQUIREMENTS, cache: Path = CACHE) -> Path:
    """The bin directory of a virtualenv (Keystone's by default) built once per requirements
    file, under `cache`."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = cache / digest
    done = venv / ".complete"
    if done.exists():
        return venv / "bin"
    with _exclusive(cache / f"{digest}.lock"):
        if done.exists():  # built by another process while this one waited
            return venv / "bin"
        shutil.rmtree(venv, ignore_errors=True)
        log = cache / f"{digest}.install.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
        }
        env["UV_PYTHON_DOWNLOADS"] = "never"
        uv = _uv()
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], log, env)
        python = str(venv / "bin" / "python")
        _run([uv, "pip", "install", "--python", python, "-r", str(requirements)], log, env)
        done.write_text(digest)
    return venv / "bin"


KEYSTONE_CONF = """\
[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///{workdir}/keystone.sqlite

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = {workdir}/fernet-keys

[fernet_receipts]
key_repository = {workdir}/fernet-keys

[credential]
key_repository = {workdir}/credential-keys
"""


@dataclass
class KeystoneProcess:
    url: str  # http://127.0.0.1:<port>/v3
    process: subprocess.Popen[bytes]
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def validations(self) -> int:
        """GET /v3/auth/tokens requests Keystone has answered so far (from its request log)."""
        return sum(
            1
            for line in self.log().splitlines()
            if line.startswith("request ") and '"GET /v3/auth/tokens' in line
        )

    def log_mark(self) -> int:
        """Where the log ends now: `peak_validations(since=...)` reads what comes after."""
        return len(self.log())

    def _in_flight(self, since: int) -> list[int]:
        # Written as each validation starts, before Keystone answers it: a client that has its
        # answer finds the line there (the "request" lines come after the answer).
        return [
            int(line.rsplit(" ", 1)[1])
            for line in self.log()[since:].splitlines()
            if line.startswith("validations in flight ")
        ]

    def validations_since(self, since: int) -> int:
        """Token validations Keystone has started after the log mark `since`."""
        return len(self._in_flight(since))

    def peak_validations(self, since: int = 0) -> int:
        """The most token validations Keystone had in progress at once, after `since`."""
        return max(self._in_flight(since), default=0)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


PLACEHOLDER_URL = "http://127.0.0.1:1/v3"  # the bootstrapped identity endpoint, fixed at start


def _manage(bin_dir: Path, workdir: Path) -> list[str]:
    conf = workdir / "keystone.conf"
    if not conf.exists():
        conf.write_text(KEYSTONE_CONF.format(workdir=workdir))
    return [str(bin_dir / "keystone-manage"), "--config-file", str(conf)]


def _bootstrap(bin_dir: Path, workdir: Path) -> None:
    """Schema, keys and the admin user, as keystone-manage sets them up, in `workdir`."""
    for name in ("fernet-keys", "credential-keys"):
        (workdir / name).mkdir()
    manage = _manage(bin_dir, workdir)
    owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name]
    owner += ["--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    # Each keystone-manage start costs seconds of imports: the three independent steps run
    # side by side, bootstrap (which needs the schema) after them.
    steps = [
        [*manage, "db_sync"],
        [*manage, "fernet_setup", *owner],
        [*manage, "credential_setup", *owner],
    ]
    running = []
    for index, args in enumerate(steps):
        step_log = workdir / f"keystone-manage-{index}.log"
        with step_log.open("wb") as out:
            running.append((args, step_log, subprocess.Popen(args, stdout=out, stderr=out)))
    for args, step_log, process in running:
        if process.wait(timeout=600) != 0:
            raise SetupError(f"{args[3]} failed:\n{step_log.read_text()[-4000:]}")
    bootstrap = ["--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-public-url", PLACEHOLDER_URL]
    _run(
        [*manage, "bootstrap", *bootstrap, "--bootstrap-region-id", "RegionOne"],
        workdir / "bootstrap.log",
    )


def ensure_state(bin_dir: Path) -> Path:
    """A bootstrapped Keystone (SQLite database and keys), made once per requirements.txt and
    copied for each test session: keystone-manage's four steps take a minute on a busy machine."""
    template = bin_dir.parent.with_name(bin_dir.parent.name + "-state")
    if (template / ".complete").exists():
        return template
    with _exclusive(template.with_name(f"{template.name}.lock")):
        if (template / ".complete").exists():  # made by another process while this one waited
            return template
        shutil.rmtree(template, ignore_errors=True)
        building = template.with_name(f"{template.name}.{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        _bootstrap(bin_dir, building)
        (building / "keystone.conf").unlink()  # holds the building directory's paths
        (building / ".complete").write_text("")
        building.rename(template)
    return template


def start_keystone(bin_dir: Path, workdir: Path) -> KeystoneProcess:
    """Serve a copy of the bootstrapped Keystone from `workdir` on a free loopback port."""
    template = ensure_state(bin_dir)
    shutil.copytree(template, workdir, dirs_exist_ok=True)
    conf = workdir / "keystone.conf"
    conf.write_text(KEYSTONE_CONF.format(workdir=workdir))
    port = free_port()
    url = f"http://127.0.0.1:{port}/v3"
    server_log = workdir / "keystone.log"
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    with server_log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir / "python"), str(HERE / "serve.py"), str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = KeystoneProcess(url=url, process=process, log_file=server_log)
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SetupError(f"keystone exited with {process.returncode}:\n{server.log()}")
            try:
                if client.get(url).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.stop()
    raise SetupError(f"keystone did not answer in {START_TIMEOUT:.0f} s:\n{server.log()}")


def password_auth(
    username: str,
    password: str,
    project: str | None = None,
    *,
    system: bool = False,
) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": username, "domain": DEFAULT_DOMAIN, "password": password}
            },
        }
    }
    if system:
        auth["scope"] = {"system": {"all": True}}
    elif project is not None:
        auth["scope"] = {"project": {"name": project, "domain": DEFAULT_DOMAIN}}
    return {"auth": auth}


@dataclass
class User:
    name: str
    password: str
    id: str
    project: str  # project name the user's tokens are scoped to
    project_id: str


@dataclass
class KeystoneAdmin:
    """Keystone's REST API as its system administrator (set-up and tokens for the tests)."""

    url: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    _token: str = ""

    def login(self) -> None:
        self._token = self.issue(password_auth("admin", ADMIN_PASSWORD, system=True))[0]

    def close(self) -> None:
        self.http.close()

    def issue(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST /v3/auth/tokens: the token and its body."""
        response = self.http.post(f"{self.url}/auth/tokens", json=body)
        if response.status_code != 201:
            raise SetupError(f"authentication failed: {response.status_code} {response.text}")
        data: dict[str, Any] = response.json()
        return response.headers["X-Subject-Token"], data

    def token_for(self, user: User) -> str:
        return self.issue(password_auth(user.name, user.password, user.project))[0]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.url}{path}", headers={"X-Auth-Token": self._token}, **kwargs
        )
        if response.status_code >= 400:
            raise SetupError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def find(self, kind: str, name: str) -> str | None:
        items = self.call("GET", f"/{kind}", params={"name": name})[kind]
        return str(items[0]["id"]) if items else None

    def role(self, name: str) -> str:
        found = self.find("roles", name)
        if found is not None:
            return found
        return str(self.call("POST", "/roles", json={"role": {"name": name}})["role"]["id"])

    def project(self, name: str) -> str:
        found = self.find("projects", name)
        if found is not None:
            return found
        body = {"project": {"name": name, "domain_id": "default"}}
        return str(self.call("POST", "/projects", json=body)["project"]["id"])

    def user(self, name: str, project: str, roles: list[str]) -> User:
        password = f"{name}-pw"
        body = {"user": {"name": name, "domain_id": "default", "password": password}}
        user_id = str(self.call("POST", "/users", json=body)["user"]["id"])
        project_id = self.project(project)
        for role in roles:
            self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role(role)}")
        return User(name, password, user_id, project, project_id)

    def fix_identity_endpoint(self) -> None:
        """Point the bootstrapped identity endpoint at this server's real port."""
        for endpoint in self.call("GET", "/endpoints")["endpoints"]:
            if endpoint["url"] == PLACEHOLDER_URL:
                body = {"endpoint": {"url": self.url}}
                self.call("PATCH", f"/endpoints/{endpoint['id']}", json=body)

    def register_image_service(self, endpoint: str) -> None:
        self.register_service("image", "glance", endpoint)

    def register_service(self, kind: str, name: str, endpoint: str) -> None:
        body = {"service": {"type": kind, "name": name, "enabled": True}}
        service_id = self.call("POST", "/services", json=body)["service"]["id"]
        for interface in ("public", "internal"):
            endpoint_body = {
                "endpoint": {
                    "service_id": service_id,
                    "interface": interface,
                    "url": endpoint,
                    "region_id": "RegionOne",
                }
            }
            self.call("POST", "/endpoints", json=endpoint_body)

    def revoke(self, token: str) -> None:
        response = self.http.delete(
            f"{self.url}/auth/tokens",
            headers={"X-Auth-Token": self._token, "X-Subject-Token": token},
        )
        if response.status_code != 204:
            raise SetupError(f"revocation failed: {response.status_code} {response.text}")

    def short_lived_token(self, user: User, seconds: int) -> tuple[str, str]:
        """A token that expires in about `seconds`, and its expires_at.

        Keystone caps a token issued through an application credential at the credential's
        expiry, which gives one short-lived token without a second Keystone configuration.
        """
        user_token = self.token_for(user)
        expires = time.gmtime(time.time() + seconds)
        body = {
            "application_credential": {
                "name": f"short-{time.monotonic_ns()}",
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%S", expires),
            }
        }
        response = self.http.post(
            f"{self.url}/users/{user.id}/application_credentials",
            json=body,
            headers={"X-Auth-Token": user_token},
        )
        if response.status_code != 201:
            raise SetupError(f"application credential: {response.status_code} {response.text}")
        credential = response.json()["application_credential"]
        token, data = self.issue(
            {
                "auth": {
                    "identity": {
                        "methods": ["application_credential"],
                        "application_credential": {
                            "id": credential["id"],
                            "secret": credential["secret"],
                        },
                    }
                }
            }
        )
        return token, str(data["token"]["expires_at"])


@dataclass
class KeystoneEnv:
    server: KeystoneProcess
    admin: KeystoneAdmin
    service: User
    alice: User
    rita: User
    bob: User
    root: User  # Keystone's bootstrap admin, scoped to project `admin`
    glimpse_port: int  # where the catalog's image endpoint points

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, user: User) -> str:
        return self.admin.token_for(user)

    def authtoken_section(self) -> dict[str, str]:
        """`[keystone_authtoken]` for a Glimpse that validates tokens and acts as the service
        user of this Keystone."""
        return {
            "auth_url": self.url,
            "username": self.service.name,
            "password": self.service.password,
            "project_name": self.service.project,
        }
