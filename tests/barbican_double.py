"""A loopback stand-in for Barbican's secrets API (DELETE /v1/secrets/{id}), for key cleanup.

It keeps a set of secrets, each owned by a project, and records every call: method, path, the
X-Auth-Token and, when the test gives it a way to ask Keystone (`token_project`), the project
that token is scoped to. Like Barbican it answers 401 without a token, 403 when the token's
project does not own the secret, 204 when deleted and 404 when there is no such secret. It can
be switched to 503 or taken down entirely (connection refused) and brought back on its port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import free_port

SECRETS_PREFIX = "/v1/secrets/"


@dataclass(frozen=True)
class BarbicanCall:
    method: str
    path: str
    token: str | None
    project_id: str | None  # the token's project, when the double can ask Keystone

    @property
    def secret_id(self) -> str:
        return self.path.removeprefix(SECRETS_PREFIX)


@dataclass
class BarbicanDouble:
    token_project: Callable[[str], str | None] | None = None
    port: int = field(default_factory=free_port)
    secrets: dict[str, str | None] = field(default_factory=dict)  # id -> owning project
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

    def add_secret(self, secret_id: str, project_id: str | None = None) -> str:
        with self._lock:
            self.secrets[secret_id] = project_id
        return secret_id

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
                self._answer(double.handle("GET", self.path, self.headers.get("X-Auth-Token")))

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

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

    def handle(self, method: str, path: str, token: str | None) -> int:  # noqa: PLR0911 -- one answer per Barbican case
        project = self.token_project(token) if token and self.token_project else None
        with self._lock:
            self.calls.append(BarbicanCall(method, path, token, project))
            if self.status_override is not None:
                return self.status_override
            if not token:
                return 401
            if not path.startswith(SECRETS_PREFIX):
                return 404
            secret_id = path.removeprefix(SECRETS_PREFIX)
            if secret_id not in self.secrets:
                return 404
            owner = self.secrets[secret_id]
            if self.token_project is not None and owner is not None and owner != project:
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
    token_project: Callable[[str], str | None] | None = None,
) -> Iterator[BarbicanDouble]:
    double = BarbicanDouble(token_project=token_project)
    double.up()
    try:
        yield double
    finally:
        double.down()
