"""Constants, the data pattern, process statistics and process helpers."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


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


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:  # noqa: ANN401
    preexec = _die_with_parent if sys.platform == "linux" else None
    return subprocess.Popen(args, preexec_fn=preexec, **kwargs)  # noqa: PLW1509


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


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found beside {sys.executable} nor on PATH")
    return found
