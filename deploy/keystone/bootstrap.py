"""The keystone-bootstrap job: Keystone's database, keys, admin and catalog, then Glimpse's
service user and the image service. Idempotent: every `docker compose up` runs it again, and it
only creates what is missing and updates what changed (passwords, endpoint URLs). When nothing
it is given changed since its last complete run (same Keystone, same script, same passwords and
URLs: a salted scrypt fingerprint on the volume), it returns at once.

Run by the Keystone image's Python with its configuration in /etc/keystone/keystone.conf:
1. keystone-manage db_sync, fernet_setup, credential_setup, bootstrap (admin user, project
   `admin`, roles admin/manager/member/reader/service, the identity service and endpoints);
2. a Keystone served on loopback inside this container for the rest, through its REST API:
   project `service`, user `glimpse` with roles service and admin on it, the `image` service
   and its public and internal endpoints.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PORT = 5001  # loopback only, inside this container
URL = f"http://127.0.0.1:{PORT}/v3"
DOMAIN = {"id": "default"}
REGION = "RegionOne"
START_TIMEOUT = 120.0
STATE = Path("/var/lib/keystone")
STAMP = STATE / "bootstrap.stamp"
INPUTS = (
    "ADMIN_PASSWORD",
    "SERVICE_PASSWORD",
    "IDENTITY_PUBLIC_URL",
    "IDENTITY_INTERNAL_URL",
    "IMAGE_PUBLIC_URL",
    "IMAGE_INTERNAL_URL",
)
# compose.yaml's defaults of GLIMPSE_ADMIN_PASSWORD and GLIMPSE_SERVICE_PASSWORD.
DEFAULT_PASSWORDS = frozenset({"change-me", "change-me-service"})


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"keystone-bootstrap: {name} is not set")
    return value


def refuse_default_passwords_beyond_loopback(*passwords: str) -> None:
    """The documented default passwords are for a stack published on loopback only."""
    address = os.environ.get("PUBLISH_ADDRESS", "127.0.0.1").strip("[]")
    try:
        loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback and DEFAULT_PASSWORDS & set(passwords):
        sys.exit(
            f"keystone-bootstrap: the ports are published on {address}: set "
            "GLIMPSE_ADMIN_PASSWORD and GLIMPSE_SERVICE_PASSWORD (their defaults are public)"
        )


def manage(*commands: list[str]) -> None:
    """Run keystone-manage commands side by side (each start costs seconds of imports)."""
    running = []
    for args in commands:
        print(f"keystone-bootstrap: keystone-manage {args[0]}", flush=True)
        running.append((args[0], subprocess.Popen(["keystone-manage", *args])))  # noqa: S603, S607
    failed = [name for name, process in running if process.wait() != 0]
    if failed:
        sys.exit(f"keystone-bootstrap: keystone-manage {', '.join(failed)} failed")


class Keystone:
    """Just enough of Keystone's v3 REST API, as the bootstrap admin."""

    def __init__(self) -> None:
        self.token = ""

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{URL}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self.token and not anonymous:
            request.add_header("X-Auth-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, {}, dict(exc.headers)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, answer, _ = self.request(method, path, body)
        if status >= 300:  # noqa: PLR2004 -- HTTP
            sys.exit(f"keystone-bootstrap: {method} {path} answered {status}")
        return answer

    def login(self, user: str, password: str, project: str) -> str | None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": DOMAIN, "password": password}},
                },
                "scope": {"project": {"name": project, "domain": DOMAIN}},
            }
        }
        status, _, headers = self.request("POST", "/auth/tokens", body, anonymous=True)
        return headers.get("X-Subject-Token") if status == 201 else None  # noqa: PLR2004

    def find(self, kind: str, **filters: str) -> dict[str, Any] | None:
        query = "&".join(f"{key}={value}" for key, value in filters.items())
        items: list[dict[str, Any]] = self.call("GET", f"/{kind}?{query}")[kind]
        return items[0] if items else None

    def ensure(self, kind: str, singular: str, body: dict[str, Any], **filters: str) -> str:
        found = self.find(kind, **filters)
        if found is None:
            found = self.call("POST", f"/{kind}", {singular: body})[singular]
            print(f"keystone-bootstrap: created {singular} {filters}", flush=True)
        return str(found["id"])


def serve() -> subprocess.Popen[bytes]:
    # gunicorn reads gunicorn.conf.py from the working directory; this bind overrides its own.
    environ = {**os.environ, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{PORT} --workers 1"}
    server = subprocess.Popen(["gunicorn"], env=environ)  # noqa: S607 -- the image's own
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"keystone-bootstrap: keystone exited with {server.returncode}")
        try:
            with urllib.request.urlopen(URL, timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    sys.exit("keystone-bootstrap: keystone did not answer on loopback")


def register(keystone: Keystone) -> None:
    service_password = env("SERVICE_PASSWORD")
    project_id = keystone.ensure(
        "projects", "project", {"name": "service", "domain_id": "default"}, name="service"
    )
    user = keystone.find("users", name="glimpse", domain_id="default")
    if user is None:
        body = {"name": "glimpse", "domain_id": "default", "password": service_password}
        user = keystone.call("POST", "/users", {"user": body})["user"]
        print("keystone-bootstrap: created user glimpse", flush=True)
    elif keystone.login("glimpse", service_password, "service") is None:
        keystone.call("PATCH", f"/users/{user['id']}", {"user": {"password": service_password}})
        print("keystone-bootstrap: reset the password of user glimpse", flush=True)
    for role in ("service", "admin"):
        role_id = keystone.ensure("roles", "role", {"name": role}, name=role)
        keystone.call("PUT", f"/projects/{project_id}/users/{user['id']}/roles/{role_id}")
    service_id = keystone.ensure(
        "services", "service", {"type": "image", "name": "glance", "enabled": True}, type="image"
    )
    urls = {"public": env("IMAGE_PUBLIC_URL"), "internal": env("IMAGE_INTERNAL_URL")}
    for interface, url in urls.items():
        endpoint = keystone.find("endpoints", service_id=service_id, interface=interface)
        body = {"service_id": service_id, "interface": interface, "url": url, "region_id": REGION}
        if endpoint is None:
            keystone.call("POST", "/endpoints", {"endpoint": body})
        elif endpoint["url"] != url:
            keystone.call("PATCH", f"/endpoints/{endpoint['id']}", {"endpoint": {"url": url}})
        print(f"keystone-bootstrap: image {interface} endpoint {url}", flush=True)


def fingerprint(salt: bytes) -> str:
    """What this run is given, hashed slowly (it covers the passwords) with a salt."""
    given = {name: env(name) for name in INPUTS}
    given["keystone"] = importlib.metadata.version("keystone")
    given["script"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    data = json.dumps(given, sort_keys=True).encode()
    return hashlib.scrypt(data, salt=salt, n=2**14, r=8, p=1).hex()


def unchanged() -> bool:
    """A complete earlier run with the same inputs, whose database and keys are still here."""
    try:
        salt, recorded = STAMP.read_text().split()
    except (OSError, ValueError):
        return False
    present = (STATE / "keystone.sqlite").exists() and any((STATE / "fernet-keys").glob("*"))
    return present and secrets.compare_digest(fingerprint(bytes.fromhex(salt)), recorded)


def record() -> None:
    salt = secrets.token_bytes(16)
    STAMP.write_text(f"{salt.hex()} {fingerprint(salt)}\n")


def main() -> None:
    admin_password = env("ADMIN_PASSWORD")
    refuse_default_passwords_beyond_loopback(admin_password, env("SERVICE_PASSWORD"))
    if unchanged():
        print("keystone-bootstrap: nothing changed since the last run", flush=True)
        return
    STAMP.unlink(missing_ok=True)
    # keystone-manage bootstrap reads the password from here: never on a command line.
    os.environ["OS_BOOTSTRAP_PASSWORD"] = admin_password
    manage(["db_sync"], ["fernet_setup"], ["credential_setup"])
    manage(
        [
            "bootstrap",
            "--bootstrap-username=admin",
            "--bootstrap-project-name=admin",
            "--bootstrap-role-name=admin",
            "--bootstrap-service-name=keystone",
            f"--bootstrap-region-id={REGION}",
            f"--bootstrap-public-url={env('IDENTITY_PUBLIC_URL')}",
            f"--bootstrap-internal-url={env('IDENTITY_INTERNAL_URL')}",
        ]
    )
    server = serve()
    try:
        keystone = Keystone()
        token = keystone.login("admin", admin_password, "admin")
        if token is None:
            sys.exit("keystone-bootstrap: the admin cannot log in")
        keystone.token = token
        register(keystone)
    finally:
        server.terminate()
        server.wait(timeout=30)
    record()
    print("keystone-bootstrap: done", flush=True)


if __name__ == "__main__":
    main()
