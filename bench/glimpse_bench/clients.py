"""Two HTTP/1.1 clients for the bulk transfers (httpx, and a minimal one on raw sockets), and
the quick trial that picks one for uploads and one for downloads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from glimpse_bench.common import (
    CHUNK,
    CLIENT_TIE,
    HOST,
    MB,
    OCTET_STREAM,
    MiB,
    iter_pattern,
    stream_pattern,
)
from glimpse_bench.results import Results

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class TransferError(Exception):
    pass


class BulkClient(Protocol):
    name: str

    async def upload(self, base: str, path: str, total: int) -> None: ...

    async def download(self, base: str, path: str) -> int: ...

    async def aclose(self) -> None: ...


class HttpxClient:
    name = "httpx"

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))

    async def upload(self, base: str, path: str, total: int) -> None:
        headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(total)}
        response = await self.client.put(
            base + path, content=stream_pattern(total), headers=headers
        )
        if response.status_code not in (200, 201, 204):
            raise TransferError(f"PUT {path}: {response.status_code} {response.text[:500]}")

    async def download(self, base: str, path: str) -> int:
        received = 0
        async with self.client.stream("GET", base + path) as response:
            if response.status_code != 200:
                body = (await response.aread())[:500]
                raise TransferError(f"GET {path}: {response.status_code} {body!r}")
            async for chunk in response.aiter_raw(chunk_size=CHUNK):
                received += len(chunk)
        return received

    async def aclose(self) -> None:
        await self.client.aclose()


class RawConnection:
    """One HTTP/1.1 connection on a non-blocking socket: fixed-length bodies only."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray(CHUNK)
        self.view = memoryview(self.buffer)
        self.pending = b""  # bytes read past the response head

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.0)  # non-blocking
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def send_head(self, method: str, target: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def read_head(self) -> tuple[str, dict[str, str]]:
        """The first line of a request or response head, and its headers (names lowercased)."""
        data = self.pending
        while b"\r\n\r\n" not in data:
            count = await self.loop.sock_recv_into(self.sock, self.buffer)
            if count == 0:
                raise TransferError("connection closed before a complete head")
            data += self.buffer[:count]
        head, _, self.pending = data.partition(b"\r\n\r\n")
        first_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return first_line, headers

    async def read_status(self) -> tuple[int, dict[str, str]]:
        status_line, headers = await self.read_head()
        return int(status_line.split(" ", 2)[1]), headers

    async def read_body(self, headers: dict[str, str], keep: int = 0) -> tuple[int, bytes]:
        """Read a Content-Length body; return its size and up to `keep` bytes of it."""
        if "chunked" in headers.get("transfer-encoding", ""):
            raise TransferError("chunked responses are not supported by the raw client")
        remaining = int(headers.get("content-length", "0"))
        total = remaining
        kept = self.pending[: min(keep, remaining)]
        taken = min(len(self.pending), remaining)
        self.pending = self.pending[taken:]
        remaining -= taken
        while remaining > 0:
            count = await self.loop.sock_recv_into(self.sock, self.view[: min(CHUNK, remaining)])
            if count == 0:
                raise TransferError(f"connection closed with {remaining} body bytes missing")
            if len(kept) < keep:
                kept += self.buffer[: min(count, keep - len(kept))]
            remaining -= count
        return total, bytes(kept)

    def close(self) -> None:
        self.sock.close()


def split_base(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


class RawClient:
    """Bulk transfers on plain sockets: sendall of 1 MiB chunks, recv_into a 1 MiB buffer."""

    name = "raw socket"

    async def upload(self, base: str, path: str, total: int) -> None:
        conn = await RawConnection.open(*split_base(base))
        try:
            await conn.send_head(
                "PUT",
                path,
                {"Content-Type": OCTET_STREAM, "Content-Length": str(total)},
            )
            try:
                for chunk in iter_pattern(total):
                    await conn.send(chunk)
            except OSError as exc:
                # The server may have answered (and closed) early: report its answer if any.
                answer = "no answer"
                with contextlib.suppress(OSError, TransferError):
                    status, headers = await conn.read_status()
                    _, body = await conn.read_body(headers, keep=500)
                    answer = f"{status} {body!r}"
                raise TransferError(f"PUT {path}: {exc} while sending; {answer}") from exc
            status, headers = await conn.read_status()
            _, body = await conn.read_body(headers, keep=500)
            if status not in (200, 201, 204):
                raise TransferError(f"PUT {path}: {status} {body!r}")
        finally:
            conn.close()

    async def download(self, base: str, path: str) -> int:
        conn = await RawConnection.open(*split_base(base))
        try:
            await conn.send_head("GET", path, {})
            status, headers = await conn.read_status()
            size, body = await conn.read_body(headers, keep=500 if status != 200 else 0)
            if status != 200:
                raise TransferError(f"GET {path}: {status} {body!r}")
            return size
        finally:
            conn.close()

    async def aclose(self) -> None:
        return None


async def timed(action: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def download_rate(client: BulkClient, base: str, path: str, expected: int) -> float:
    started = time.perf_counter()
    received = await client.download(base, path)
    elapsed = time.perf_counter() - started
    if received != expected:
        raise TransferError(f"GET {path}: {received} bytes, expected {expected}")
    return received / elapsed / MB


@dataclass
class ClientTrial:
    """One client's quick transfer against the loopback server: rate and its own CPU cost."""

    rate: float  # MB/s
    cpu: float  # CPU ms of this process per MB

    def __str__(self) -> str:
        return f"{self.rate:.0f} MB/s at {self.cpu:.2f} CPU ms/MB"


async def trial(action: Awaitable[Any], size: int) -> ClientTrial:
    cpu0 = time.process_time()
    elapsed = await timed(action)
    return ClientTrial(size / elapsed / MB, (time.process_time() - cpu0) * 1000 / (size / MB))


def pick(trials: dict[str, ClientTrial]) -> str:
    """The faster client; within CLIENT_TIE of each other, the one that costs less CPU (the
    client shares the cores with the server)."""
    fastest = max(trials.values(), key=lambda t: t.rate).rate
    close = {name: t for name, t in trials.items() if t.rate >= fastest * (1 - CLIENT_TIE)}
    return min(close, key=lambda name: close[name].cpu)


async def choose_client(base: str, results: Results, size: int) -> tuple[BulkClient, BulkClient]:
    """Time both clients against the loopback server; return the ones for (download, upload)."""
    candidates: list[BulkClient] = [HttpxClient(), RawClient()]
    down: dict[str, ClientTrial] = {}
    up: dict[str, ClientTrial] = {}
    for client in candidates:
        await client.download(base, f"/{CHUNK}")  # connect and warm up
        down[client.name] = await trial(client.download(base, f"/{size}"), size)
        up[client.name] = await trial(client.upload(base, "/sink", size), size)
    for client in candidates:
        await client.aclose()
    best_down, best_up = pick(down), pick(up)
    for direction, trials, best in (("download", down, best_down), ("upload", up, best_up)):
        results.add(
            f"Bulk client for {direction}",
            best,
            "; ".join(f"{name}: {t}" for name, t in trials.items())
            + f" ({size // MiB} MiB from the loopback server)",
        )
    fresh: dict[str, Callable[[], BulkClient]] = {"httpx": HttpxClient, "raw socket": RawClient}
    return fresh[best_down](), fresh[best_up]()
