"""A real Barbican for the tests: its virtualenv, configuration, process and catalog entry.

Barbican 23 runs in its own virtualenv, built with the repository's uv from
barbican-requirements.txt and kept under `.cache/barbican/<hash>/` (gitignored). Each test
session serves one on a free loopback port with a SQLite database (created at start), the
simple_crypto plugin (secrets encrypted with a KEK made for the session) and Keystone
authentication (keystonemiddleware's auth_token in the paste pipeline, validating as the
`glimpse` service user). It is registered in the Keystone catalog as `key-manager`.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from keystone_server import HERE, ROOT, STOP_TIMEOUT, SetupError, User, ensure_venv, free_port

REQUIREMENTS = HERE / "barbican-requirements.txt"
CACHE = ROOT / ".cache" / "barbican"
START_TIMEOUT = 120.0

BARBICAN_CONF = """\
[DEFAULT]
debug = false
use_stderr = true
host_href = {url}
sql_connection = sqlite:///{workdir}/barbican.sqlite
db_auto_create = true

[database]
connection = sqlite:///{workdir}/barbican.sqlite

[secretstore]
enabled_secretstore_plugins = store_crypto

[crypto]
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = {kek}

[keystone_authtoken]
auth_url = {keystone}
www_authenticate_uri = {keystone}
auth_type = password
username = {service.name}
password = {service.password}
project_name = {service.project}
user_domain_name = Default
project_domain_name = Default
service_token_roles_required = true
interface = public

[oslo_policy]
enforce_scope = true
enforce_new_defaults = true
"""

# Barbican's own pipeline with Keystone authentication, less CORS (no browser calls here).
PASTE_INI = """\
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican-api-keystone

[pipeline:barbican_version]
pipeline = request_id http_proxy_to_wsgi microversion versionapp

[pipeline:barbican-api-keystone]
pipeline = request_id http_proxy_to_wsgi authtoken context microversion apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:context]
paste.filter_factory = barbican.api.middleware.context:ContextMiddleware.factory

[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
"""


@dataclass
class BarbicanProcess:
    url: str  # http://127.0.0.1:<port> (secrets at /v1/secrets)
    process: subprocess.Popen[bytes]
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


def start_barbican(workdir: Path, keystone_url: str, service: User) -> BarbicanProcess:
    """Install (once) and serve Barbican from `workdir`, authenticating against Keystone."""
    bin_dir = ensure_venv(REQUIREMENTS, CACHE)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    conf_dir = workdir / ".barbican"
    conf_dir.mkdir(parents=True, exist_ok=True)
    kek = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    (conf_dir / "barbican.conf").write_text(
        BARBICAN_CONF.format(
            url=url, workdir=workdir, kek=kek, keystone=keystone_url, service=service
        )
    )
    paste_ini = workdir / "barbican-api-paste.ini"
    paste_ini.write_text(PASTE_INI)
    server_log = workdir / "barbican.log"
    env = {**os.environ, "HOME": str(workdir)}
    with server_log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir / "python"), str(HERE / "barbican_serve.py"), str(port), str(paste_ini)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = BarbicanProcess(url=url, process=process, log_file=server_log)
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SetupError(f"barbican exited with {process.returncode}:\n{server.log()}")
            try:
                # 401 from /v1 shows the whole pipeline, Keystone middleware included, is up.
                if client.get(f"{url}/v1/secrets").status_code == 401:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.stop()
    raise SetupError(f"barbican did not answer in {START_TIMEOUT:.0f} s:\n{server.log()}")


@dataclass
class SecretsApi:
    """Barbican's secrets REST API as the tests' users call it (with their Keystone tokens)."""

    url: str
    http: httpx.Client

    def store(
        self,
        token: str,
        payload: bytes,
        secret_type: str = "opaque",  # noqa: S107 -- a secret type, not a password
        *,
        private: bool = False,
        algorithm: str | None = None,
        bit_length: int | None = None,
    ) -> str:
        """POST /v1/secrets: the new secret's uuid. `private` drops project read access."""
        body: dict[str, object] = {
            "name": f"glimpse-test-{secret_type}",
            "secret_type": secret_type,
            "payload": base64.b64encode(payload).decode(),
            "payload_content_type": "application/octet-stream",
            "payload_content_encoding": "base64",
        }
        if algorithm is not None:
            body |= {"algorithm": algorithm, "bit_length": bit_length, "mode": "cbc"}
        response = self.http.post(
            f"{self.url}/v1/secrets", json=body, headers={"X-Auth-Token": token}
        )
        if response.status_code != 201:
            raise SetupError(f"storing a secret: {response.status_code} {response.text}")
        secret_id = str(response.json()["secret_ref"]).rsplit("/", 1)[1]
        if private:
            acl = {"read": {"project-access": False}}
            answer = self.http.put(
                f"{self.url}/v1/secrets/{secret_id}/acl", json=acl, headers={"X-Auth-Token": token}
            )
            if answer.status_code != 200:
                raise SetupError(f"secret ACL: {answer.status_code} {answer.text}")
        return secret_id

    def status(self, token: str, secret_id: str) -> int:
        """What GET /v1/secrets/{id} answers the token (200, 403, 404...)."""
        response = self.http.get(
            f"{self.url}/v1/secrets/{secret_id}", headers={"X-Auth-Token": token}
        )
        return response.status_code


@dataclass
class BarbicanEnv:
    server: BarbicanProcess
    secrets: SecretsApi

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self, secret_id: str) -> list[tuple[str, str, int]]:
        """Barbican's answers to requests naming the secret: (method, path, status) each, in
        order, from its request log (`"GET /v1/secrets/<id> HTTP/1.1" 200 1234`)."""
        answered = []
        for line in self.server.log().splitlines():
            if not line.startswith("request ") or secret_id not in line:
                continue
            request, _, rest = line.removeprefix('request "').partition('" ')
            method, path = request.split(" ")[:2]
            answered.append((method, path, int(rest.split(" ")[0])))
        return answered

    def callers(self, secret_id: str) -> list[tuple[str, str, str]]:
        """Whose calls naming the secret were: (method, user id, project id) each, in order,
        as Keystone's middleware in Barbican identified the token ("-" when it did not)."""
        found = []
        for line in self.server.log().splitlines():
            if line.startswith("caller ") and secret_id in line:
                method, _, user, project = line.removeprefix("caller ").split(" ")
                found.append((method, user, project))
        return found
