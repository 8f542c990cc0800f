"""glimpse-api's worker processes for `workers` >= 2: forked from a master that has imported the
application, each listening on a socket of its own.

Why not uvicorn's `workers`: it spawns each worker, which imports everything again (nothing is
shared between them), and its workers accept from one shared socket, where connections opened
together mostly land on whichever worker wakes first. Here the master imports the application's
modules and may build the application object (never started: no event loop, engine, thread or
connection exists before the fork; each worker's lifespan opens its own), freezes them out of
the garbage collector's reach and forks, so those pages stay shared copy-on-write; each worker
has a SO_REUSEPORT socket of its own (bound by the master just before it forks that worker),
and the kernel spreads new connections over the workers.

The master checks first that the address is free with a socket that does not set SO_REUSEPORT
(a second server on the port still fails to start), passes SIGTERM/SIGINT on to the workers as
SIGTERM (each lets its requests in progress finish, as a single uvicorn does), starts a worker
again when one dies, rolls them all on SIGHUP (an old worker stops once its successor serves),
and stops everything when a worker cannot start. Workers get SIGTERM when the master dies
(PR_SET_PDEATHSIG), so none outlives it. Each serving worker's event loop writes a heartbeat to
a pipe every second; one silent for HEARTBEAT_TIMEOUT seconds (its loop blocked, or the process
stopped) is killed and replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Final, NoReturn

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from glimpse.fork_sharing import settle_before_fork

log = logging.getLogger(__name__)

# Exit codes of a worker that could not start (a refused configuration, a failed lifespan start
# or bind): starting it again would fail the same way.
START_FAILURES: Final = frozenset({2, STARTUP_FAILURE})
_PR_SET_PDEATHSIG: Final = 1
_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
_BACKLOG: Final = 2048  # uvicorn's default
# A serving worker's loop beats every second (uvicorn ticks every 0.1 s). Far above any pause a
# healthy loop makes, even on a loaded machine, and well below a client's patience.
HEARTBEAT_TIMEOUT: Final = 20.0
_TICKS_PER_BEAT: Final = 10


class AddressInUseError(OSError):
    """The address is taken (by another server, or another Glimpse)."""


def check_address_free(host: str, port: int) -> int:
    """The port to serve on (`port`, or the one the kernel chose for 0) once a socket without
    SO_REUSEPORT could bind host:port: a server already there (SO_REUSEPORT or not) refuses it."""
    with _socket(host) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AddressInUseError(exc.errno, f"cannot listen on {host}:{port}: {exc}") from exc
        chosen: int = probe.getsockname()[1]
        return chosen


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of one worker's, bound with SO_REUSEPORT beside its siblings' and listening."""
    sock = _socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def _socket(host: str) -> socket.socket:
    # As uvicorn binds: an address with a colon is IPv6, anything else (names too) IPv4.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def preload(modules: tuple[str, ...]) -> None:
    """Import `modules` (only import: nothing they define is run), for the workers to share.
    One that is not installed (uvloop is optional to uvicorn) is left to the workers, which
    then do without it as they would have."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            log.debug("preload: %s not imported: %s", name, exc)


@dataclass
class Supervisor:
    """The master: `workers` forked processes, each running `make_config()`'s uvicorn server on
    its own socket bound to host:port."""

    make_config: Callable[[], uvicorn.Config]
    host: str
    port: int
    workers: int
    # Called in the master on SIGHUP, before the new workers are forked.
    on_reload: Callable[[], None] = lambda: None
    children: dict[int, int] = field(default_factory=dict, init=False)  # pid -> slot
    # Workers replaced on SIGHUP: serving until their successor is ready, then finishing their
    # requests. A successor (new pid) -> the workers it retires once its loop first beats.
    _retired: set[int] = field(default_factory=set, init=False)
    _retire_when_ready: dict[int, list[int]] = field(default_factory=dict, init=False)
    _signals: list[int] = field(default_factory=list, init=False)
    _stopping: bool = field(default=False, init=False)
    _exit_code: int = field(default=0, init=False)
    _wakeup: tuple[int, int] = field(default=(-1, -1), init=False)
    # A worker's heartbeat pipe (its read end) and when it last beat (None: still starting).
    _heartbeats: dict[int, int] = field(default_factory=dict, init=False)  # pid -> fd
    _last_beat: dict[int, float | None] = field(default_factory=dict, init=False)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0 once every worker has exited) or until a worker
        cannot start (its exit code)."""
        self._wakeup = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in self._handled}
        signal.set_wakeup_fd(self._wakeup[1], warn_on_full_buffer=False)
        try:
            scheme_host = f"[{self.host}]" if ":" in self.host else self.host
            log.info(
                "glimpse-api master [%d]: %d workers on http://%s:%d",
                os.getpid(),
                self.workers,
                scheme_host,
                self.port,
            )
            # Every object so far is frozen, the heap's free pages released: the workers share
            # the rest with the master.
            settle_before_fork()
            for slot in range(self.workers):
                if not self._stopping:
                    self._fork(slot)
            while self.children or self._retired:
                self._wait()
                self._handle_signals()
                self._reap()
                self._kill_silent_workers()
        finally:
            signal.set_wakeup_fd(-1)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in self._wakeup:
                os.close(fd)
            for fd in self._heartbeats.values():
                os.close(fd)
            if self.children or self._retired:  # an exception in the master: all go with it
                self._signal_children(signal.SIGTERM)
        return self._exit_code

    @property
    def _handled(self) -> tuple[signal.Signals, ...]:
        return (*_STOP_SIGNALS, signal.SIGHUP, signal.SIGCHLD)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _wait(self) -> None:
        readable: list[int] = []
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(
                [self._wakeup[0], *self._heartbeats.values()], [], [], 1.0
            )
        _drain(self._wakeup[0])
        beating = {fd: pid for pid, fd in self._heartbeats.items()}
        now = time.monotonic()
        for fd in readable:
            pid = beating.get(fd)
            if pid is not None and _drain(fd):
                self._last_beat[pid] = now
                for retiring in self._retire_when_ready.pop(pid, []):
                    log.info("worker [%d] serves: worker [%d] stops", pid, retiring)
                    _kill(retiring, signal.SIGTERM)

    def _kill_silent_workers(self) -> None:
        """SIGKILL for a serving worker whose loop has not beaten for HEARTBEAT_TIMEOUT seconds
        (it is replaced when reaped). Not while stopping: a draining worker's loop stops ticking
        while its last requests finish."""
        if self._stopping:
            return
        now = time.monotonic()
        for pid in self.children:
            last = self._last_beat.get(pid)
            if last is not None and now - last > HEARTBEAT_TIMEOUT:
                log.error("worker [%d] silent for %.0f s: killing it", pid, now - last)
                self._last_beat[pid] = None  # killed once; the reaper replaces it
                _kill(pid, signal.SIGKILL)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum in _STOP_SIGNALS:
                # Each one is passed on as SIGTERM, as uvicorn's supervisor does: a second one
                # skips the drain, and Ctrl-C (SIGINT to the whole group, workers included)
                # never turns into a second SIGINT, which uvicorn takes for "stop at once".
                if not self._stopping:
                    name = signal.Signals(signum).name
                    log.info("%s: stopping %d workers", name, len(self.children))
                self._stopping = True
                self._signal_children(signal.SIGTERM)
            elif signum == signal.SIGHUP and not self._stopping:
                self._roll()

    def _roll(self) -> None:
        """New workers first (their sockets take new connections at once); each old one stops as
        on SIGTERM, finishing its requests, once its successor's loop has beaten (it serves)."""
        old = dict(self.children)
        log.info("SIGHUP: replacing %d workers", len(old))
        self.on_reload()
        for pid, slot in old.items():
            self.children.pop(pid)
            self._retired.add(pid)
            successor = self._fork(slot)
            if successor is None:  # no new socket could be bound: all stop
                return
            # A worker still waiting for its own successor hands that wait on.
            self._retire_when_ready[successor] = [pid, *self._retire_when_ready.pop(pid, [])]

    def _signal_children(self, signum: int) -> None:
        for pid in (*self.children, *self._retired):
            _kill(pid, signum)

    def _reap(self) -> None:
        # Imported by preload(), after the metrics directory was chosen (prometheus_client
        # decides how to count when first imported).
        from glimpse import metrics  # noqa: PLC0415

        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            metrics.process_exited(pid)  # its live gauges (uploads in flight) count no more
            self._forget_heartbeat(pid)
            if pid in self._retired:
                self._retired.discard(pid)
                continue
            slot = self.children.pop(pid, None)
            retiring = self._retire_when_ready.pop(pid, [])
            if slot is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                continue
            if code in START_FAILURES:
                log.error("worker [%d] could not start (exit code %d): stopping", pid, code)
                self._fail(code)
                continue
            log.warning("worker [%d] died (%s): starting another", pid, _describe(code))
            successor = self._fork(slot)
            if successor is not None and retiring:
                self._retire_when_ready[successor] = retiring

    def _fork(self, slot: int) -> int | None:
        """A worker for `slot` (its pid; None when no socket could be bound: all stop), on a
        socket bound here before the fork: it takes connections (they wait in its backlog) from
        now on, even while the worker starts."""
        try:
            sock = listening_socket(self.host, self.port)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s: stopping", self.host, self.port, exc)  # noqa: TRY400 -- the reason is all
            self._fail(STARTUP_FAILURE)
            return None
        beat_read, beat_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        master = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(beat_read)
            self._child(master, sock, beat_write)
        sock.close()  # the worker's alone
        os.close(beat_write)
        self.children[pid] = slot
        self._heartbeats[pid] = beat_read
        self._last_beat[pid] = None
        return pid

    def _forget_heartbeat(self, pid: int) -> None:
        fd = self._heartbeats.pop(pid, None)
        if fd is not None:
            os.close(fd)
        self._last_beat.pop(pid, None)

    def _fail(self, code: int) -> None:
        self._exit_code = code
        self._stopping = True
        self._signal_children(signal.SIGTERM)

    def _child(self, master: int, sock: socket.socket, heartbeat: int) -> NoReturn:
        """The worker process: never returns into the master's code."""
        code = 1
        server: uvicorn.Server | None = None
        try:
            _reset_signals(self._wakeup)
            for fd in self._heartbeats.values():  # its siblings' pipes are the master's
                os.close(fd)
            _die_with(master)
            server = _BeatingServer(self.make_config(), heartbeat)
            server.run(sockets=[sock])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker [%d] failed", os.getpid())
        finally:
            if code not in START_FAILURES and code != 0 and not (server and server.started):
                code = STARTUP_FAILURE  # the factory failed: it would fail again

            # os._exit: the master's exit handlers (its metrics directory's removal) are its own.
            logging.shutdown()
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


class _BeatingServer(uvicorn.Server):
    """A uvicorn server whose event loop writes to the master's heartbeat pipe every second,
    from uvicorn's own tick (so a blocked loop stops the beats)."""

    def __init__(self, config: uvicorn.Config, heartbeat: int) -> None:
        super().__init__(config)
        self._heartbeat = heartbeat

    async def on_tick(self, counter: int) -> bool:
        if counter % _TICKS_PER_BEAT == 0:
            # A full pipe (a master slow to read) has beats enough; a gone master: PDEATHSIG.
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(self._heartbeat, b".")
        return await super().on_tick(counter)


def _drain(fd: int) -> bool:
    """Read all there is on a non-blocking pipe; whether there was anything."""
    read = False
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            read = True
    return read


def _reset_signals(wakeup: tuple[int, int]) -> None:
    signal.set_wakeup_fd(-1)
    for fd in wakeup:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the master's: it rolls the workers
    # Until uvicorn's handlers are in place, and when uvicorn raises the signal again after its
    # shutdown: leave through the finally above.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _exit_on_signal)


def _exit_on_signal(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _die_with(master: int) -> None:
    """SIGTERM to this worker when the master dies (Linux); if it died already, stop now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG): %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != master:
        raise SystemExit(0)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
