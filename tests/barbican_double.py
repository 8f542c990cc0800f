"""A loopback stand-in for Barbican's secrets API (GET and DELETE /v1/secrets/{id}, GET
/v1/secrets/{id}/payload), kept only for the faults a real Barbican cannot be made to show on
demand: answering 5xx, refusing connections, hanging. Everything else runs against the real
Barbican (tests/keystone/barbican_server.py); test_the_double_decides_as_barbican_does holds
the double's decisions to the real one's.

It keeps a set of secrets, each with its project, creator and whether it is private, and records
every call: method, path, the X-Auth-Token and, when the test gives it a way to ask Keystone
(`token_scope`), the user and project the token stands for. Like Barbican it answers 401 without
a token, with one Keystone does not know or with one scoped to no project (the system, a domain:
Barbican's context middleware wants a project), 404 when there is no such secret, and decides the
rest by Barbican's default policy (secret:get and secret:delete):
  - role admin: allowed, whatever the secret's project (Barbican's `role:admin` check is not
    tied to a project);
  - role member in the secret's project: allowed when the token's user created the secret or
    the secret is not private (read_project_access, true by default);
  - anything else: 403.
Without `token_scope` any token is taken and nothing is checked. It can be switched to 503 or
taken down entirely (connection refused) and brought back on its port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import free_port

SECRETS_PREFIX = "/v1/secrets/"
PAYLOAD_SUFFIX = "/payload"


@dataclass(frozen=True)
class TokenScope:
    """What Keystone says of a token."""

    user_id: str
    project_id: str | None
    roles: frozenset[str]
    system: bool = False
    domain_id: str | None = None


@dataclass(frozen=True)
class Secret:
    project_id: str | None
    creator_id: str | None = None
    read_project_access: bool = True  # Barbican's default: readable by the project's members
    secret_type: str = "opaque"
    payload: bytes = b""


@dataclass(frozen=True)
class BarbicanCall:
    method: str
    path: str
    token: str | None
    project_id: str | None  # the token's project, when the double can ask Keystone
    status: int = 0  # what the double answered

    @property
    def secret_id(self) -> str:
        return self.path.removeprefix(SECRETS_PREFIX).removesuffix(PAYLOAD_SUFFIX)


def allowed(scope: TokenScope, secret: Secret) -> bool:
    """Barbican's default secret:get / secret:delete for a token, as described above."""
    if "admin" in scope.roles:
        return True
    member = "member" in scope.roles and scope.project_id == secret.project_id
    return member and (scope.user_id == secret.creator_id or secret.read_project_access)


@dataclass
class BarbicanDouble:
    token_scope: Callable[[str], TokenScope | None] | None = None
    port: int = field(default_factory=free_port)
    secrets: dict[str, Secret] = field(default_factory=dict)
    calls: list[BarbicanCall] = field(default_factory=list)
    status_override: int | None = None  # e.g. 503: answer this to every call
    # Cleared: calls are taken but not answered until it is set again (a hung Barbican).
    answering: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_secret(
        self,
        secret_id: str,
        project_id: str | None = None,
        *,
        creator_id: str | None = None,
        private: bool = False,
        kind: str = "opaque",
        payload: bytes = b"",
    ) -> str:
        """`kind` is Barbican's secret_type (certificate, symmetric, opaque...)."""
        with self._lock:
            self.secrets[secret_id] = Secret(project_id, creator_id, not private, kind, payload)
        return secret_id

    def body(self, path: str) -> tuple[bytes, str]:
        """What a successful GET answers: the secret's metadata (JSON) or its payload."""
        secret_id = path.removeprefix(SECRETS_PREFIX).removesuffix(PAYLOAD_SUFFIX)
        with self._lock:
            secret = self.secrets.get(secret_id)
        if secret is None:
            return b"", "application/json"
        if path.endswith(PAYLOAD_SUFFIX):
            return secret.payload, "application/octet-stream"
        meta = {
            "secret_ref": f"{self.url}{SECRETS_PREFIX}{secret_id}",
            "secret_type": secret.secret_type,
            "status": "ACTIVE",
            "content_types": {"default": "application/octet-stream"},
        }
        return json.dumps(meta).encode(), "application/json"

    def up(self) -> None:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                return None

            def do_DELETE(self) -> None:
                double.answering.wait()
                self._answer(double.handle("DELETE", self.path, self.headers.get("X-Auth-Token")))

            def do_GET(self) -> None:
                double.answering.wait()
                status = double.handle("GET", self.path, self.headers.get("X-Auth-Token"))
                body, content_type = double.body(self.path) if status == 200 else (b"", "")
                self._answer(status, body, content_type)

            def _answer(self, status: int, body: bytes = b"", content_type: str = "") -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.answering.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: calls now fail with connection refused."""
        self.answering.set()  # a held call must not keep the server from stopping
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def handle(self, method: str, path: str, token: str | None) -> int:
        scope = self.token_scope(token) if token and self.token_scope else None
        with self._lock:
            status = self._answer(method, path, token, scope)
            project = scope.project_id if scope is not None else None
            self.calls.append(BarbicanCall(method, path, token, project, status))
            return status

    def _answer(  # noqa: PLR0911 -- one answer per Barbican case
        self, method: str, path: str, token: str | None, scope: TokenScope | None
    ) -> int:
        if self.status_override is not None:
            return self.status_override
        if not token or (self.token_scope is not None and scope is None):
            return 401
        if scope is not None and (scope.system or scope.domain_id or scope.project_id is None):
            return 401  # no project: Barbican's context middleware refuses it
        if not path.startswith(SECRETS_PREFIX):
            return 404
        secret_id = path.removeprefix(SECRETS_PREFIX)
        if method == "GET":
            secret_id = secret_id.removesuffix(PAYLOAD_SUFFIX)
        secret = self.secrets.get(secret_id)
        if secret is None:
            return 404
        if scope is not None and not allowed(scope, secret):
            return 403
        if method == "DELETE":
            del self.secrets[secret_id]
            return 204
        return 200

    def deletes(self, secret_id: str) -> list[BarbicanCall]:
        with self._lock:
            return [c for c in self.calls if c.method == "DELETE" and c.secret_id == secret_id]


@contextmanager
def running_barbican(
    token_scope: Callable[[str], TokenScope | None] | None = None,
) -> Iterator[BarbicanDouble]:
    double = BarbicanDouble(token_scope=token_scope)
    double.up()
    try:
        yield double
    finally:
        double.down()
