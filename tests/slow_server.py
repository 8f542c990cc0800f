"""A loopback HTTP server that answers slowly on purpose, to test overall deadlines: it drips
its answer a few bytes at a time (each wait well within any read timeout, the whole far beyond
any deadline), or holds every answer until the test lets it go. It counts the connections it
has open, and the most it ever had at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["drip-headers", "drip-body", "hold"]
DRIP_BYTES = 4
DRIP_SECONDS = 0.2


@dataclass
class SlowServer:
    mode: Mode
    body: bytes = b"x" * (1024 * 1024)
    released: threading.Event = field(default_factory=threading.Event)
    requests: list[str] = field(default_factory=list)  # request lines, in arrival order
    peak: int = 0
    _open: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _conns: set[socket.socket] = field(default_factory=set)

    @property
    def base(self) -> str:
        assert self._listener is not None
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._spawn(self._accept)

    def stop(self) -> None:
        """Close the listener and every connection (their threads end within a drip)."""
        self._stop.set()
        self.released.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._open += 1
            self.peak = max(self.peak, self._open)
            self._conns.add(conn)
        try:
            with conn, contextlib.suppress(OSError):
                conn.settimeout(30)
                while not self._stop.is_set() and self._answer(conn):
                    pass
        finally:
            with self._lock:
                self._open -= 1
                self._conns.discard(conn)

    def _answer(self, conn: socket.socket) -> bool:
        """Read one request and answer it; whether the connection may carry another."""
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                return False
            request += data
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        self.requests.append(line)
        head_only = line.startswith("HEAD ")
        body = b"" if head_only else self.body
        headers = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        if self.mode == "hold":
            self.released.wait()
            conn.sendall(headers + body)
            return True
        if self.mode == "drip-headers":
            self._drip(conn, headers + body)
            return False
        conn.sendall(headers)
        self._drip(conn, body)
        return False

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        for start in range(0, len(data), DRIP_BYTES):
            if self._stop.is_set():
                return
            conn.sendall(data[start : start + DRIP_BYTES])
            time.sleep(DRIP_SECONDS)


@contextlib.contextmanager
def slow_server(mode: Mode, body: bytes = b"x" * (1024 * 1024)) -> Iterator[SlowServer]:
    server = SlowServer(mode, body)
    server.start()
    try:
        yield server
    finally:
        server.stop()
