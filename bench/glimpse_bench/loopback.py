"""The loopback server: a trivial HTTP/1.1 server that streams the pattern or swallows a body
(run as `bench/run.py --loopback-server BYTES`), the ceiling the API is compared with."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from glimpse_bench.clients import RawConnection, TransferError
from glimpse_bench.common import HOST, OCTET_STREAM, iter_pattern, spawn, stop_process

if TYPE_CHECKING:
    from collections.abc import Iterator


# The server runs in its own process, started through the bench's entry point.
ENTRY_POINT: Final = Path(__file__).resolve().parents[1] / "run.py"


async def serve_loopback(default_size: int, lifetime: float) -> None:
    """GET answers `default_size` bytes (or the size the path ends with) of the pattern in
    1 MiB writes; any other method has its body read and discarded, then 204.

    Plain non-blocking sockets (sendall of the pattern's chunks, recv_into one buffer), so the
    server costs as little as possible and the transfer is bound by loopback and the client.
    """
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(64)
    listener.settimeout(0.0)  # non-blocking
    print(listener.getsockname()[1], flush=True)

    async def handle(sock: socket.socket) -> None:
        conn = RawConnection(sock)
        try:
            while True:
                request_line, headers = await conn.read_head()
                await conn.read_body(headers)
                method, target, _ = request_line.split(" ", 2)
                if method != "GET":
                    await conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")
                    continue
                last = target.rstrip("/").rpartition("/")[2]
                size = int(last) if last.isdigit() else default_size
                await conn.send(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {OCTET_STREAM}\r\n"
                    f"Content-Length: {size}\r\n\r\n".encode("latin-1")
                )
                for chunk in iter_pattern(size):
                    await conn.send(chunk)
        except (TransferError, OSError):
            pass  # the client went away
        finally:
            conn.close()

    async def accept_forever() -> None:
        handlers: set[asyncio.Task[None]] = set()
        while True:
            sock, _ = await loop.sock_accept(listener)
            sock.settimeout(0.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(handle(sock))
            handlers.add(task)
            task.add_done_callback(handlers.discard)

    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(accept_forever(), lifetime)
    finally:
        listener.close()


@contextlib.contextmanager
def loopback_server(size: int) -> Iterator[str]:
    proc = spawn(
        [sys.executable, str(ENTRY_POINT), "--loopback-server", str(size)],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 -- set by stdout=PIPE
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"loopback server did not start (said {line!r})")
        yield f"http://{HOST}:{int(line)}"
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()
