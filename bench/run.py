"""Glimpse benchmark: throughput, latency and memory of a real API server on this machine.

Starts `glimpse-api` on the embedded default (SQLite, file store, noauth) in a temporary
directory, drives it over loopback and prints a Markdown table with the figures, the bounds of
this machine (loopback ceiling, hashing throughput) and a verdict per target. A benchmark, not a
test: the exit code is 0 whatever the verdicts (1 only when the run itself fails).

Environment:
  BENCH_IMAGE_MIB       size of the single upload/download image (default 1024)
  BENCH_CONCURRENT_MIB  size of each of the 8 concurrent uploads (default 256)
  BENCH_DRIVER_MIB      size of the object each store driver puts and gets (default 256)
  BENCH_STORM_MIB       size of the image 32 clients download at once, cold (default 64)
  BENCH_TIMEOUT         seconds after which the whole run gives up (default 900)

`--cache` measures only the image cache: a download of the image from an s3 store (moto) cold
and warm, and 32 concurrent cold downloads of one image (wall time and store reads).
`--drivers` measures only the store drivers (file, and s3 against a moto server the bench
starts), in this process, without the API server. `--import` measures only the plain upload of
the image and its interoperable import (stage, then a real glimpse-worker until active).

MB is 10**6 bytes throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

import httpx

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
    from types import FrameType

MiB: Final = 1024 * 1024
MB: Final = 1_000_000
BUFFER_SIZE: Final = 8 * MiB
CHUNK: Final = MiB
SEED: Final = 0x676C696D
HOST: Final = "127.0.0.1"
OCTET_STREAM: Final = "application/octet-stream"

SETUP_IMAGES: Final = 5_000
SETUP_CONCURRENCY: Final = 16
LATENCY_REQUESTS: Final = 200
WARMUP_REQUESTS: Final = 10
HAMMER_REQUESTS: Final = 5_000
HAMMER_WORKERS: Final = 64
HAMMER_SECONDS: Final = 20.0  # each concurrency run stops early after this
DOWNLOAD_RUNS: Final = 3
CONCURRENT_UPLOADS: Final = 8
RSS_INTERVAL: Final = 0.05
CHOICE_MIB: Final = 256  # size of the quick client comparison transfers
CLIENT_TIE: Final = 0.10  # clients this close in rate are told apart by their CPU cost

DOWNLOAD_TARGET: Final = 0.70  # of the loopback ceiling
UPLOAD_TARGET: Final = 0.75  # of the hashing bound
RSS_GROWTH_LIMIT: Final = 100 * MiB
OTHER_CPU_WARNING: Final = 25.0  # % of one core used by other processes worth a note

# Groups of table rows, in the order they are printed.
MACHINE, THROUGHPUT, IMPORT, MEMORY, LATENCY, CONCURRENCY, DRIVERS, CACHE, RUN = range(9)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --------------------------------------------------------------------------------------------
# The data: a repeating pseudo-random 8 MiB buffer, handed out as the same eight 1 MiB chunks.


def pattern_chunks() -> list[bytes]:
    buffer = random.Random(SEED).randbytes(BUFFER_SIZE)
    return [buffer[offset : offset + CHUNK] for offset in range(0, BUFFER_SIZE, CHUNK)]


_CHUNKS: list[bytes] = []


def iter_pattern(total: int) -> Iterator[bytes]:
    """`total` bytes of the repeating buffer in 1 MiB chunks (the last one may be shorter)."""
    if not _CHUNKS:
        _CHUNKS.extend(pattern_chunks())
    sent = 0
    index = 0
    while sent < total:
        chunk = _CHUNKS[index % len(_CHUNKS)]
        if total - sent < len(chunk):
            chunk = chunk[: total - sent]
        sent += len(chunk)
        index += 1
        yield chunk


async def stream_pattern(total: int) -> AsyncIterator[bytes]:
    for chunk in iter_pattern(total):
        yield chunk


# --------------------------------------------------------------------------------------------
# Process helpers: /proc readings and children that die with us.


def rss_bytes(pid: int) -> int:
    return _status_field(pid, "VmRSS:")


def hwm_bytes(pid: int) -> int:
    return _status_field(pid, "VmHWM:")


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (Linux >= 4.0) so it measures from now on; False where not possible."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (steal included: lost to us as well)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / _CLOCK_TICKS


@dataclass
class CpuShare:
    """CPU over a phase as % of one core: the server, this process, and everything else."""

    server: float = 0.0
    bench: float = 0.0
    other: float = 0.0

    def __str__(self) -> str:
        return (
            f"CPU: server {self.server:.0f}%, bench {self.bench:.0f}%, "
            f"other processes {self.other:.0f}%"
        )


@contextlib.contextmanager
def cpu_share(pid: int) -> Iterator[CpuShare]:
    share = CpuShare()
    wall0, server0, bench0 = time.perf_counter(), cpu_seconds(pid), time.process_time()
    machine0 = machine_busy_seconds()
    try:
        yield share
    finally:
        wall = max(time.perf_counter() - wall0, 1e-9)
        server = cpu_seconds(pid) - server0
        bench = time.process_time() - bench0
        machine = machine_busy_seconds() - machine0
        share.server = 100 * server / wall
        share.bench = 100 * bench / wall
        share.other = max(100 * (machine - server - bench) / wall, 0.0)


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds in a thread, keeping the peak.

    A thread rather than a task on the event loop, so a loop busy pushing bytes cannot
    stretch the sampling interval.
    """

    def __init__(self, pid: int, interval: float = RSS_INTERVAL) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_bytes(self.pid))
                self.samples += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:  # noqa: ANN401 -- Popen options
    preexec = _die_with_parent if sys.platform == "linux" else None
    return subprocess.Popen(args, preexec_fn=preexec, **kwargs)  # noqa: PLW1509 -- no threads yet


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Two HTTP/1.1 clients for the bulk transfers: httpx, and a minimal one on raw sockets.


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


# --------------------------------------------------------------------------------------------
# The loopback server: a trivial HTTP/1.1 server that streams the pattern or swallows a body.


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
        [sys.executable, __file__, "--loopback-server", str(size)],
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


# --------------------------------------------------------------------------------------------
# The Glimpse server.


@dataclass
class GlimpseServer:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "glimpse-api.log"

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None  # noqa: S101 -- only read while running
        return self.proc.pid

    def environment(self) -> dict[str, str]:
        # The embedded defaults: nothing from a developer's GLIMPSE_* environment leaks in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("GLIMPSE_")}
        env.update(
            GLIMPSE_CONFIG="",
            GLIMPSE_BIND_PORT=str(self.port),
            GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{self.workdir / 'bench.sqlite'}",
            GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(self.workdir / "images"),
            GLIMPSE_LOG_LEVEL="WARNING",
        )
        return env

    def start(self) -> None:
        env = self.environment()
        subprocess.run(
            [tool("glimpse-manage"), "db", "sync"],
            cwd=self.workdir,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with self.log_path.open("wb") as log:
            self.proc = spawn(
                [tool("glimpse-api")],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, client: httpx.AsyncClient, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"glimpse-api exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                response = await client.get(f"{self.base}/versions")
                if response.status_code < 500:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"glimpse-api did not answer /versions in {within:.0f}s")

    def stop(self) -> None:
        stop_process(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        markers = ("ERROR", "CRITICAL", "Traceback")
        return [line for line in text.splitlines() if any(mark in line for mark in markers)]


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found beside {sys.executable} nor on PATH")
    return found


# --------------------------------------------------------------------------------------------
# Measurements.


@dataclass
class Results:
    """Rows of the table, kept in groups (MACHINE, THROUGHPUT, ...) printed in that order."""

    rows: list[tuple[int, str, str, str]] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group: int = 0

    def add(self, measure: str, value: str, notes: str = "", *, group: int | None = None) -> None:
        self.rows.append((self.group if group is None else group, measure, value, notes))
        print(f"  {measure}: {value}" + (f"  ({notes})" if notes else ""), flush=True)

    def table_rows(self) -> list[tuple[str, str, str]]:
        return [row[1:] for row in sorted(self.rows, key=lambda row: row[0])]


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def hash_rate(algorithm: str, total: int) -> float:
    """MB per CPU second of this thread, so other processes taking turns on the core do not
    count against the bound."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    started = time.thread_time()
    for chunk in iter_pattern(total):
        hasher.update(chunk)
    hasher.hexdigest()
    return total / max(time.thread_time() - started, 1e-9) / MB


def disk_rate(directory: Path, total: int) -> float:
    """Write `total` bytes and fsync them, as the file store does."""
    path = directory / "disk-probe"
    started = time.perf_counter()
    with path.open("wb") as handle:
        for chunk in iter_pattern(total):
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return total / elapsed / MB


class Api:
    """The JSON calls, on one httpx client; non-2xx answers are collected, not raised."""

    def __init__(self, base: str, client: httpx.AsyncClient, results: Results) -> None:
        self.base = base
        self.client = client
        self.results = results
        self.failures = 0

    def _check(self, response: httpx.Response, expected: int) -> bool:
        if response.status_code == expected:
            return True
        self.failures += 1
        if len(self.results.errors) < 10:
            request = response.request
            self.results.errors.append(
                f"{request.method} {request.url.path}: {response.status_code} "
                f"{response.text[:300]!r}"
            )
        return False

    async def create(self, name: str) -> str | None:
        response = await self.client.post(
            f"{self.base}/v2/images",
            json={"name": name, "disk_format": "raw", "container_format": "bare"},
        )
        if not self._check(response, 201):
            return None
        return str(response.json()["id"])

    async def show(self, image_id: str) -> bool:
        return self._check(await self.client.get(f"{self.base}/v2/images/{image_id}"), 200)

    async def list25(self) -> bool:
        return self._check(await self.client.get(f"{self.base}/v2/images?limit=25"), 200)


async def gather_limited(
    count: int,
    workers: int,
    job: Callable[[int], Awaitable[Any]],
    *,
    max_seconds: float | None = None,
) -> int:
    """Run job(0..count-1) on `workers` concurrent workers; stop early after `max_seconds`.

    Return how many jobs ran.
    """
    next_index = iter(range(count))
    stop = math.inf if max_seconds is None else time.perf_counter() + max_seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in next_index:
            if time.perf_counter() > stop:
                return
            await job(index)
            done += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


async def hammer_raw(
    base: str, path: str, count: int, workers: int, max_seconds: float
) -> tuple[int, int, float]:
    """GET `path` on `workers` keep-alive raw connections, `count` times in all or until
    `max_seconds` have passed; return (done, failed, seconds)."""
    host, port = split_base(base)
    connections = [await RawConnection.open(host, port) for _ in range(workers)]
    failed = 0

    async def get(conn: RawConnection) -> None:
        nonlocal failed
        await conn.send_head("GET", path, {})
        status, headers = await conn.read_status()
        await conn.read_body(headers)
        if status != 200:
            failed += 1

    try:
        await asyncio.gather(*(get(conn) for conn in connections))  # warm every connection
        failed = 0
        tickets = iter(range(count))
        stop = time.perf_counter() + max_seconds

        async def worker(conn: RawConnection) -> int:
            done = 0
            for _ in tickets:
                if time.perf_counter() > stop:
                    break
                await get(conn)
                done += 1
            return done

        started = time.perf_counter()
        done = sum(await asyncio.gather(*(worker(conn) for conn in connections)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()
    return done, failed, elapsed


async def latencies(action: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    for index in range(WARMUP_REQUESTS):
        await action(index)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        await action(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


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


@dataclass
class Figures:
    """The numbers the verdicts need (MB/s and bytes)."""

    md5: float = 0.0
    sha512: float = 0.0
    ceiling: float = 0.0
    upload: float = 0.0
    download: float = 0.0
    rss_growth: int = 0

    @property
    def hash_bound(self) -> float:
        return min(self.md5, self.sha512)

    def measure_hashing(self, size: int) -> None:
        """One pass of both hashes; each keeps its best pass."""
        self.md5 = max(self.md5, hash_rate("md5", size))
        self.sha512 = max(self.sha512, hash_rate("sha512", size))


async def measure_bounds(
    workdir: Path, image_size: int, loop_base: str, results: Results, figures: Figures
) -> tuple[BulkClient, BulkClient]:
    """Hashing (first pass), disk; return the bulk clients chosen on the loopback server."""
    print("Machine bounds", flush=True)
    results.group = MACHINE
    figures.measure_hashing(image_size)
    disk = disk_rate(workdir, image_size)
    results.add("Disk write + fsync (informational)", f"{disk:.0f} MB/s", "same size as the image")
    choice_size = min(CHOICE_MIB * MiB, image_size)
    return await choose_client(loop_base, results, choice_size)


async def measure_throughput(
    api: Api,
    pid: int,
    clients: tuple[BulkClient, BulkClient],
    *,
    loop_base: str,
    image_size: int,
    figures: Figures,
) -> None:
    """Upload, then the downloads from Glimpse and from the loopback server in turns, so both
    see the same machine; hashing is measured a second time right after the upload."""
    print("Throughput", flush=True)
    results = api.results
    results.group = THROUGHPUT
    down_client, up_client = clients
    image_id = await api.create("bench-big")
    if image_id is None:
        raise RuntimeError("could not create the benchmark image")
    path = f"/v2/images/{image_id}/file"
    with cpu_share(pid) as cpu:
        elapsed = await timed(up_client.upload(api.base, path, image_size))
    figures.upload = image_size / elapsed / MB
    results.add("Upload", f"{figures.upload:.0f} MB/s", f"{up_client.name}; {cpu}")

    figures.measure_hashing(min(image_size, CHOICE_MIB * MiB))
    slower = "md5" if figures.md5 <= figures.sha512 else "sha512"
    results.add(
        "Hashing bound (one core)",
        f"{figures.hash_bound:.0f} MB/s",
        f"md5 {figures.md5:.0f}, sha512 {figures.sha512:.0f} MB/s per CPU second, "
        f"best of 2 passes; bound is {slower}",
        group=MACHINE,
    )

    best_cpu = CpuShare()
    for _ in range(DOWNLOAD_RUNS):
        rate = await download_rate(down_client, loop_base, f"/{image_size}", image_size)
        figures.ceiling = max(figures.ceiling, rate)
        with cpu_share(pid) as cpu:
            rate = await download_rate(down_client, api.base, path, image_size)
        if rate > figures.download:
            figures.download, best_cpu = rate, cpu
    results.add(
        "Loopback ceiling (download)",
        f"{figures.ceiling:.0f} MB/s",
        f"{down_client.name}, best of {DOWNLOAD_RUNS}, in turns with Glimpse",
        group=MACHINE,
    )
    results.add(
        "Download",
        f"{figures.download:.0f} MB/s",
        f"{down_client.name}, best of {DOWNLOAD_RUNS}; {best_cpu}",
    )


async def measure_memory(
    api: Api, pid: int, up_client: BulkClient, size: int, figures: Figures
) -> None:
    print("Memory", flush=True)
    api.results.group = MEMORY
    ids = [await api.create(f"bench-concurrent-{n}") for n in range(CONCURRENT_UPLOADS)]
    if None in ids:
        raise RuntimeError("could not create the concurrent upload images")
    await asyncio.sleep(0.5)
    before = rss_bytes(pid)
    hwm_reset = reset_peak_rss(pid)
    with RssSampler(pid) as sampler, cpu_share(pid) as cpu:
        elapsed = await timed(
            asyncio.gather(*(up_client.upload(api.base, f"/v2/images/{i}/file", size) for i in ids))
        )
    hwm = hwm_bytes(pid) if hwm_reset else 0
    peak = max(sampler.peak, before)
    figures.rss_growth = peak - before
    results = api.results
    results.add("Server RSS before concurrent uploads", f"{before / MiB:.0f} MiB")
    results.add(
        f"Server RSS peak, {CONCURRENT_UPLOADS} x {size // MiB} MiB uploads",
        f"{peak / MiB:.0f} MiB",
        f"{sampler.samples} samples every {RSS_INTERVAL * 1000:.0f} ms"
        + (f"; VmHWM {hwm / MiB:.0f} MiB" if hwm else ""),
    )
    aggregate = CONCURRENT_UPLOADS * size / elapsed / MB
    results.add("Concurrent upload aggregate", f"{aggregate:.0f} MB/s", f"{up_client.name}; {cpu}")


async def measure_latency(api: Api, pid: int) -> list[str]:
    """Create the listing's images, then time create, show and list; return the created ids."""
    print(f"Latency (setting up {SETUP_IMAGES} images first)", flush=True)
    api.results.group = LATENCY
    created: list[str] = []

    async def setup(index: int) -> None:
        new_id = await api.create(f"bench-{index:05d}")
        if new_id is not None:
            created.append(new_id)

    with cpu_share(pid) as cpu:
        elapsed = await timed(gather_limited(SETUP_IMAGES, SETUP_CONCURRENCY, setup))
    api.results.add(
        f"Create {SETUP_IMAGES} images, {SETUP_CONCURRENCY} concurrent",
        f"{SETUP_IMAGES / elapsed:.0f} req/s",
        f"{elapsed:.1f} s; {cpu}",
    )
    if not created:
        raise RuntimeError("no image could be created")
    picker = random.Random(SEED)

    async def create_one(index: int) -> None:
        await api.create(f"bench-latency-{index}")

    async def show_one(_: int) -> None:
        await api.show(picker.choice(created))

    async def list_one(_: int) -> None:
        await api.list25()

    for label, action in (
        ("create", create_one),
        ("show", show_one),
        (f"list 25 of {SETUP_IMAGES}+", list_one),
    ):
        samples = await latencies(action, LATENCY_REQUESTS)
        api.results.add(
            f"Latency {label}",
            f"p50 {percentile(samples, 50):.1f} ms, p95 {percentile(samples, 95):.1f} ms",
            f"{LATENCY_REQUESTS} sequential requests",
        )
    return created


async def measure_concurrency(api: Api, pid: int, image_id: str) -> None:
    print("Concurrency", flush=True)
    api.results.group = CONCURRENCY

    async def hammer(_: int) -> None:
        await api.show(image_id)

    label = f"GET one image, {HAMMER_WORKERS} concurrent"
    await gather_limited(HAMMER_WORKERS * 2, HAMMER_WORKERS, hammer)  # open the connections
    with cpu_share(pid) as cpu:
        started = time.perf_counter()
        done = await gather_limited(
            HAMMER_REQUESTS, HAMMER_WORKERS, hammer, max_seconds=HAMMER_SECONDS
        )
        elapsed = time.perf_counter() - started
    api.results.add(label, f"{done / elapsed:.0f} req/s", f"httpx, {done} requests; {cpu}")

    # The same with a client that costs next to nothing, so the server has the cores.
    path = f"/v2/images/{image_id}"
    with cpu_share(pid) as cpu:
        done, failed, elapsed = await hammer_raw(
            api.base, path, HAMMER_REQUESTS, HAMMER_WORKERS, HAMMER_SECONDS
        )
    api.results.add(
        label + " (raw client)", f"{done / elapsed:.0f} req/s", f"{done} requests; {cpu}"
    )
    if failed:
        api.failures += failed
        api.results.errors.append(f"GET {path}: {failed} of {done} answers were not 200")


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """moto's S3 server in its own process: (endpoint, pid)."""
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=2.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer within 60 s") from None
                time.sleep(0.1)
        yield endpoint, proc.pid
    finally:
        stop_process(proc)


async def measure_drivers(workdir: Path, size: int, results: Results) -> None:
    """Put and get of one object through each store driver, called directly in this process:
    the file driver on the bench's temporary directory, the s3 driver (default part sizes)
    against moto's S3 server on loopback, so s3 figures are bound by moto, not by S3."""
    from glimpse.stores.base import StoreDriver, StoreError  # noqa: PLC0415 -- only here
    from glimpse.stores.filesystem import FilesystemStore  # noqa: PLC0415 -- only this figure
    from glimpse.stores.s3 import S3Config, S3Store  # noqa: PLC0415 -- only this figure

    print(f"Store drivers ({size // MiB} MiB object)", flush=True)
    results.group = DRIVERS
    with moto_server() as (endpoint, moto_pid):
        drivers: dict[str, StoreDriver] = {
            "file": FilesystemStore("bench-file", workdir / "driver-file"),
            "s3 (moto)": S3Store(
                "bench-s3",
                S3Config(
                    endpoint_url=endpoint,
                    bucket="bench",
                    access_key="bench",
                    secret_key="bench",  # noqa: S106 -- moto takes any key
                    create_bucket=True,
                    addressing_style="path",
                ),
            ),
        }
        for label, driver in drivers.items():
            try:
                with cpu_share(moto_pid) as put_cpu:
                    started = time.perf_counter()
                    stored = await driver.put("bench-object", stream_pattern(size))
                    put_elapsed = time.perf_counter() - started
                with cpu_share(moto_pid) as get_cpu:
                    started = time.perf_counter()
                    received = 0
                    async for chunk in driver.get(stored.location):
                        received += len(chunk)
                    get_elapsed = time.perf_counter() - started
                if received != size:
                    raise RuntimeError(f"{label}: read {received} bytes, expected {size}")
                await driver.delete(stored.location)
            except StoreError as exc:
                raise RuntimeError(f"{label}: {exc}") from exc
            finally:
                await driver.aclose()
            for verb, elapsed, cpu in (
                ("put", put_elapsed, put_cpu),
                ("get", get_elapsed, get_cpu),
            ):
                notes = f"CPU: bench {cpu.bench:.0f}%"
                if label.startswith("s3"):
                    notes += f", moto {cpu.server:.0f}%"
                results.add(f"Driver {label} {verb}", f"{size / elapsed / MB:.0f} MB/s", notes)


IMPORT_POLL: Final = 0.2  # seconds between looks at an importing image


def pool_children(pid: int) -> list[int]:
    """The worker's pool processes (Linux), whose memory the import uses."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


@contextlib.contextmanager
def glimpse_worker(server: GlimpseServer) -> Iterator[subprocess.Popen[bytes]]:
    """One glimpse-worker (one pool process) on the server's database, stores and broker."""
    log_path = server.workdir / "glimpse-worker.log"
    with log_path.open("wb") as log:
        proc = spawn(
            [tool("glimpse-worker"), "--loglevel=WARNING"],
            cwd=server.workdir,
            env={**server.environment(), "GLIMPSE_CELERY__WORKER_CONCURRENCY": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop_process(proc)


async def measure_import(
    api: Api, server: GlimpseServer, up_client: BulkClient, image_size: int, figures: Figures
) -> None:
    """The import of the image (stage + POST /import, then a real worker until active), next to
    the plain upload of the same bytes measured in Throughput."""
    print("Import", flush=True)
    results = api.results
    results.group = IMPORT
    image_id = await api.create("bench-import")
    if image_id is None:
        raise RuntimeError("could not create the import image")
    with glimpse_worker(server) as worker:
        started = time.perf_counter()
        with cpu_share(server.pid) as stage_cpu:
            await up_client.upload(api.base, f"/v2/images/{image_id}/stage", image_size)
        staged = time.perf_counter()
        response = await api.client.post(
            f"{api.base}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /import: {response.status_code} {response.text[:300]}")
        peak, status = 0, "importing"
        while status == "importing":
            await asyncio.sleep(IMPORT_POLL)
            for child in pool_children(worker.pid):
                with contextlib.suppress(OSError):
                    peak = max(peak, rss_bytes(child))
            if worker.poll() is not None:
                raise RuntimeError(f"glimpse-worker exited with {worker.returncode}")
            image = (await api.client.get(f"{api.base}/v2/images/{image_id}")).json()
            status = image["status"]
        done = time.perf_counter()
    if status != "active" or image["size"] != image_size:
        raise RuntimeError(f"import ended {status} with size {image.get('size')}")
    total = image_size / (done - started) / MB
    results.add(
        "Plain upload of the same image",
        f"{figures.upload:.0f} MB/s",
        f"{image_size / figures.upload / MB:.1f} s" if figures.upload else "",
    )
    results.add(
        "Import: stage + import via a real worker until active",
        f"{total:.0f} MB/s",
        f"{done - started:.1f} s = stage {staged - started:.1f} s ({stage_cpu}) "
        f"+ import until active {done - staged:.1f} s",
    )
    if peak:
        results.add("Worker pool process RSS peak during the import", f"{peak / MiB:.0f} MiB")


async def import_only(workdir: Path, image_size: int) -> Results:
    """The plain upload and the import of the same image, and nothing else."""
    results = Results()
    figures = Figures()
    server = GlimpseServer(workdir, free_port())
    up_client = HttpxClient()
    try:
        server.start()
        async with httpx.AsyncClient(timeout=60.0) as client:
            await server.wait_ready(client)
            api = Api(server.base, client, results)
            image_id = await api.create("bench-plain")
            if image_id is None:
                raise RuntimeError("could not create the benchmark image")
            elapsed = await timed(
                up_client.upload(api.base, f"/v2/images/{image_id}/file", image_size)
            )
            figures.upload = image_size / elapsed / MB
            await measure_import(api, server, up_client, image_size, figures)
    finally:
        server.stop()
        await up_client.aclose()
        results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])
    return results


STORM_CLIENTS: Final = 32


class CacheServer(GlimpseServer):
    """glimpse-api with the image cache on (cachemanagement flavor) over an s3 store."""

    s3_endpoint: str = ""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        config = self.workdir / "glance-api.conf"
        config.write_text(
            "\n".join(
                [
                    "[DEFAULT]",
                    "enabled_backends = s3:s3",
                    f"image_cache_dir = {self.workdir / 'cache'}",
                    f"worker_self_reference_url = {self.base}",
                    "[glance_store]",
                    "default_backend = s3",
                    "[s3]",
                    f"s3_store_host = {self.s3_endpoint}",
                    "s3_store_access_key = bench",
                    "s3_store_secret_key = bench",
                    "s3_store_bucket = bench-cache",
                    "s3_store_create_bucket_on_put = true",
                    "s3_store_bucket_url_format = path",
                    "[paste_deploy]",
                    "flavor = cachemanagement",
                    "",
                ]
            )
        )
        env["GLIMPSE_CONFIG"] = str(config)
        return env


@contextlib.contextmanager
def logged_moto_server(log_path: Path) -> Iterator[str]:
    """moto's S3 server with its request log (one line per request) in `log_path`."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = spawn(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=2.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer within 60 s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        stop_process(proc)


def store_reads(log_path: Path, image_id: str) -> int:
    return sum(
        f"GET /bench-cache/{image_id} " in line
        for line in log_path.read_text(errors="replace").splitlines()
    )


async def wait_cached(client: httpx.AsyncClient, base: str, image_id: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listing = (await client.get(f"{base}/v2/cache")).json()
        if image_id in [entry["image_id"] for entry in listing.get("cached_images", [])]:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"image {image_id} was not cached within 300 s")


async def measure_cache(workdir: Path, image_size: int, storm_size: int, results: Results) -> None:
    """Download from the store through a cold cache, then from the warm cache; then 32 clients
    at once on one cold image (store reads counted in moto's request log)."""
    results.group = CACHE
    moto_log = workdir / "moto-cache.log"
    cache_dir = workdir / "cache-node"
    cache_dir.mkdir()
    with logged_moto_server(moto_log) as endpoint:
        server = CacheServer(cache_dir, free_port())
        server.s3_endpoint = endpoint
        bulk = HttpxClient()
        try:
            server.start()
            async with httpx.AsyncClient(timeout=600.0) as client:
                await server.wait_ready(client)
                api = Api(server.base, client, results)
                image_id = await api.create("bench-cache")
                storm_id = await api.create("bench-storm")
                if image_id is None or storm_id is None:
                    raise RuntimeError("could not create the cache benchmark images")
                await bulk.upload(server.base, f"/v2/images/{image_id}/file", image_size)
                await bulk.upload(server.base, f"/v2/images/{storm_id}/file", storm_size)
                path = f"/v2/images/{image_id}/file"
                cold = await download_rate(bulk, server.base, path, image_size)
                await wait_cached(client, server.base, image_id)
                warm = await download_rate(bulk, server.base, path, image_size)
                size = f"{image_size // MiB} MiB, s3 store on moto"
                results.add("Download, cold cache (from the store)", f"{cold:.0f} MB/s", size)
                results.add("Download, warm cache", f"{warm:.0f} MB/s", size)
                storm_path = f"/v2/images/{storm_id}/file"
                started = time.perf_counter()
                received = await asyncio.gather(
                    *(bulk.download(server.base, storm_path) for _ in range(STORM_CLIENTS))
                )
                wall = time.perf_counter() - started
                if received != [storm_size] * STORM_CLIENTS:
                    raise TransferError(f"boot storm: sizes {sorted(set(received))}")
                results.add(
                    f"{STORM_CLIENTS} concurrent cold downloads of one image",
                    f"{wall:.2f} s",
                    f"{storm_size // MiB} MiB each, "
                    f"{STORM_CLIENTS * storm_size / wall / MB:.0f} MB/s in all",
                )
                results.add("Store reads for those downloads", str(store_reads(moto_log, storm_id)))
        finally:
            server.stop()
            await bulk.aclose()
            results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])


async def cache_only(workdir: Path, image_size: int, storm_size: int) -> Results:
    results = Results()
    await measure_cache(workdir, image_size, storm_size, results)
    return results


async def drivers_only(workdir: Path, size: int) -> Results:
    results = Results()
    await measure_drivers(workdir, size, results)
    return results


async def run(
    workdir: Path, image_size: int, concurrent_size: int, driver_size: int, storm_size: int
) -> Results:
    results = Results()
    figures = Figures()
    print(
        f"Glimpse benchmark: image {image_size // MiB} MiB, "
        f"{CONCURRENT_UPLOADS} x {concurrent_size // MiB} MiB concurrent uploads, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    load_at_start = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    results.add("Load average at start", load_at_start, "1, 5, 15 min", group=RUN)
    server = GlimpseServer(workdir, free_port())
    limits = httpx.Limits(max_connections=HAMMER_WORKERS, max_keepalive_connections=HAMMER_WORKERS)
    clients: tuple[BulkClient, ...] = ()
    try:
        with loopback_server(image_size) as loop_base:
            clients = await measure_bounds(workdir, image_size, loop_base, results, figures)
            server.start()
            async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
                await server.wait_ready(client)
                api = Api(server.base, client, results)
                pid = server.pid
                rss = f"{rss_bytes(pid) / MiB:.0f} MiB"
                results.add("Server RSS at start", rss, f"pid {pid}", group=MEMORY)
                with cpu_share(pid) as cpu:
                    await measure_throughput(
                        api,
                        pid,
                        clients,
                        loop_base=loop_base,
                        image_size=image_size,
                        figures=figures,
                    )
                    await measure_import(api, server, clients[1], image_size, figures)
                    await measure_memory(api, pid, clients[1], concurrent_size, figures)
                    created = await measure_latency(api, pid)
                    await measure_concurrency(api, pid, created[0])
        results.group = RUN
        results.add("CPU over all server phases", f"{cpu.server:.0f}% server", str(cpu))
        if cpu.other > OTHER_CPU_WARNING:
            results.notes.append(
                f"Other processes used {cpu.other:.0f}% of a core on average while the "
                f"server was measured (load average at start {load_at_start}): the figures "
                "are lower and noisier than on an idle machine."
            )
        if api.failures:
            results.add("Failed API requests", str(api.failures), "see the errors below")
    except BaseException:
        if server.proc is not None and (code := server.proc.poll()) is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            print(f"glimpse-api {how} during the run", file=sys.stderr)
        server.stop()
        if tail := server.log_tail():
            print(f"glimpse-api log (last lines):\n{tail}", file=sys.stderr)
        raise
    finally:
        server.stop()
        results.errors.extend(f"server log: {line}" for line in server.log_problems()[:10])
        for bulk in clients:
            await bulk.aclose()

    await measure_drivers(workdir, driver_size, results)
    await measure_cache(workdir, image_size, storm_size, results)
    results.verdicts = [
        verdict("Download vs loopback ceiling", figures.download, figures.ceiling, DOWNLOAD_TARGET),
        verdict("Upload vs hashing bound", figures.upload, figures.hash_bound, UPLOAD_TARGET),
        (
            "RSS growth, concurrent uploads",
            f"{figures.rss_growth / MiB:.0f} MiB",
            "-",
            "-",
            f"< {RSS_GROWTH_LIMIT // MiB} MiB",
            "PASS" if figures.rss_growth < RSS_GROWTH_LIMIT else "MISS",
        ),
    ]
    return results


def verdict(
    label: str, measured: float, bound: float, target: float
) -> tuple[str, str, str, str, str, str]:
    ratio = measured / bound if bound else 0.0
    return (
        label,
        f"{measured:.0f} MB/s",
        f"{bound:.0f} MB/s",
        f"{ratio:.0%}",
        f">= {target:.0%}",
        "PASS" if ratio >= target else "MISS",
    )


def markdown(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header) + " |", separator, *(line(row) + " |" for row in rows)])


def report(results: Results) -> None:
    print()
    print("## Glimpse benchmark (MB = 10^6 bytes)")
    print()
    print(markdown(("Measure", "Value", "Notes"), results.table_rows()))
    if results.verdicts:  # none when only the drivers were measured
        print()
        print("## Targets")
        print()
        header = ("Target", "Measured", "Bound", "Ratio", "Required", "Verdict")
        print(markdown(header, results.verdicts))
    for note in results.notes:
        print()
        print(f"Note: {note}")
    if results.errors:
        print()
        print("## Errors")
        print()
        for error in results.errors:
            print(f"- {error}")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loopback-server", type=int, metavar="BYTES", help=argparse.SUPPRESS)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--drivers", action="store_true", help="measure only the store drivers")
    only.add_argument(
        "--import", dest="import_", action="store_true", help="measure only upload vs import"
    )
    only.add_argument("--cache", action="store_true", help="measure only the image cache")
    args = parser.parse_args(argv)
    loop_factory = _loop_factory()
    if args.loopback_server is not None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve_loopback(args.loopback_server, lifetime=900))
        return 0

    signal.signal(signal.SIGTERM, _terminate)
    image_size = env_int("BENCH_IMAGE_MIB", 1024) * MiB
    concurrent_size = env_int("BENCH_CONCURRENT_MIB", 256) * MiB
    driver_size = env_int("BENCH_DRIVER_MIB", 256) * MiB
    storm_size = env_int("BENCH_STORM_MIB", 64) * MiB
    timeout = env_int("BENCH_TIMEOUT", 900)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as workdir:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                if args.drivers:
                    work = drivers_only(Path(workdir), driver_size)
                elif args.import_:
                    work = import_only(Path(workdir), image_size)
                elif args.cache:
                    work = cache_only(Path(workdir), image_size, storm_size)
                else:
                    work = run(Path(workdir), image_size, concurrent_size, driver_size, storm_size)
                results = runner.run(asyncio.wait_for(work, timeout))
        except (
            RuntimeError,
            TransferError,
            OSError,
            httpx.HTTPError,
            TimeoutError,
            subprocess.TimeoutExpired,
        ) as exc:
            print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as exc:
            output = (exc.stdout or b"") + (exc.stderr or b"")
            print(f"bench failed: {exc}\n{output.decode(errors='replace')}", file=sys.stderr)
            return 1
    report(results)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (uvicorn serves on it too), else asyncio's default loop."""
    try:
        import uvloop  # noqa: PLC0415 -- optional
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


if __name__ == "__main__":
    sys.exit(main())
