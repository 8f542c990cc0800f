"""What the cluster tests and their fixtures share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

# Short leases and passes, so the recoveries the tests wait for come within seconds.
LEASE_SECONDS = 10


@dataclass
class WebServer:
    """Serves `files` by name; a name in `held` sends half its body, then waits for its event."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    held: dict[str, threading.Event] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://localhost:{self.port}/{name}"


def handler_for(web: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            body = web.files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            gate = web.held.get(name)
            if gate is None:
                self.wfile.write(body)
                return
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            gate.wait(timeout=240)
            self.wfile.write(body[half:])

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0
