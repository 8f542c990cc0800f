"""A TCP relay in front of a real server, so a test can take that server "down" (connections
refused, open ones cut), make it hang (connections accepted, nothing forwarded either way), and
bring it back on the same address without losing its data."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from support import free_port

BUFFER = 64 * 1024


@dataclass
class Relay:
    target: tuple[str, int]
    port: int = field(default_factory=free_port)
    _listener: socket.socket | None = None
    _open: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held: set[socket.socket] = field(default_factory=set)
    _flowing: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        # create_server sets SO_REUSEADDR, so the port can be taken again right after down().
        self._flowing.set()
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
            held, self._held = self._held, set()
        for sock in sockets:  # their relay threads see the end and close them
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for sock in held:  # no relay thread: close them here
            sock.close()
        self._flowing.set()  # a paused pipe wakes, finds its sockets shut, and ends

    def hang(self) -> None:
        """Keep accepting, forward nothing: new connections are held open and never reach the
        server, open ones fall silent (a server or network that hangs). down() ends it."""
        self._flowing.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            if not self._flowing.is_set():
                with self._lock:
                    self._held.add(client)  # unanswered until down() closes it
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # down() ran meanwhile
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions until both ends are done, then close both (never leak a socket)."""
        pipes = [
            threading.Thread(target=self._pipe, args=pair, daemon=True)
            for pair in ((client, server), (server, client))
        ]
        for pipe in pipes:
            pipe.start()
        for pipe in pipes:
            pipe.join()
        with self._lock:
            self._open.difference_update((client, server))
        client.close()
        server.close()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(BUFFER):
                self._flowing.wait()  # hang(): held here until down() (then sendall fails)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def relay_to(host: str, port: int) -> Iterator[Relay]:
    relay = Relay((host, port))
    relay.up()
    try:
        yield relay
    finally:
        relay.down()
