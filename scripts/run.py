"""`make run`: start every process of deploy/Procfile and stop them all together.

Ctrl-C (or SIGTERM, or any one process ending) stops the rest with SIGTERM, waits for a clean
exit, and only then kills. The grace period is longer than a Celery worker's warm shutdown,
which on the server-less filesystem broker takes several seconds.

The Procfile's Glimpse commands (this environment's console scripts) are forked from this
process once it has imported the libraries they all use (PRELOAD), rather than started afresh:
the API, the worker and the scrubber then share those pages copy-on-write instead of holding
a copy each (about 40 MiB less in all). Nothing is built before the fork, only imported; each
entry point reads its configuration as it would started on its own. Any other command, and all
of them if the imports brought in prometheus_client (which chooses how to count when imported,
before the API and the worker have chosen their metrics directories), starts afresh.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import importlib
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Final, NoReturn, Protocol

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "deploy" / "Procfile"
GRACE_SECONDS = 30
# What the services share, imported before the fork. Never glimpse.metrics, glimpse_api.app or
# the worker's tasks: they import prometheus_client.
PRELOAD: Final = (
    "glimpse.cli.common",
    "glimpse.malloc_tuning",
    "glimpse.db.engine",
    "glimpse.stores.registry",
    "glimpse.stores.filesystem",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "aiosqlite",
    "httpcore",
    "glimpse.services.housekeeping",
    "glimpse_scrubber.jobs",
    "glimpse_scrubber.health",
    "glimpse_worker.celery_app",
    "glimpse_worker.health",
    "celery.apps.worker",
    "celery.worker.consumer",
    "celery.concurrency.thread",
    "kombu.transport.filesystem",
    "glimpse_api.deps",
    "glimpse_api.errors",
    "glimpse_api.middleware",
    "glimpse_api.drain",
    "glimpse_api.shortcut",
    "glimpse_api.supervisor",
    "glimpse_api.http_protocol",
    "glimpse_api.routers.images",
    "glimpse_api.routers.image_data",
    "glimpse_api.routers.imports",
    "glimpse_api.routers.healthcheck",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.lifespan.on",
)
_PR_SET_NAME: Final = 15


class Child(Protocol):
    returncode: int | None

    def poll(self) -> int | None: ...
    def send_signal(self, signum: int) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class Forked:
    """A child forked from this process: Popen's calls that main() uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.05)
        assert self.returncode is not None  # noqa: S101 -- poll() set it
        return self.returncode

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def read_procfile(path: Path) -> dict[str, list[str]]:
    processes = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            processes[name.strip()] = shlex.split(command)
    return processes


def preload(modules: tuple[str, ...]) -> bool:
    """Import `modules` and freeze them out of the cycle collector's reach (its passes in the
    children would otherwise write to every page); whether the children may be forked."""
    for name in modules:
        importlib.import_module(name)
    from glimpse.config import ConfigError, load_settings  # noqa: PLC0415 -- preloaded above

    # Thrown away: each service builds its own. The first build fills the libraries' caches
    # (several MiB), which the children then share instead of each filling its own.
    with contextlib.suppress(ConfigError):
        load_settings()
    if "prometheus_client" in sys.modules:
        print("run: the preload imported prometheus_client: starting afresh", file=sys.stderr)
        return False
    gc.collect()
    gc.freeze()
    return True


def entry_point(command: list[str]) -> Callable[[], object] | None:
    """The function of `command`'s program when it is a console script of this environment."""
    program = (ROOT / command[0]).resolve()
    if program.parent != Path(sys.prefix, "bin").resolve():
        return None
    for script in entry_points(group="console_scripts", name=program.name):
        loaded: Callable[[], object] = script.load()
        return loaded
    return None


def start(name: str, command: list[str], *, fork: bool) -> Child:
    main = entry_point(command) if fork else None
    if main is None:
        return subprocess.Popen(command, cwd=ROOT)  # noqa: S603 -- our own Procfile
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _run_child(name, command, main)
    return Forked(pid)


def _run_child(name: str, command: list[str], main: Callable[[], object]) -> NoReturn:
    """The forked process: runs `main` as the command would, then exits (never returns)."""
    code: object = 1
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        _name_process(name)
        sys.argv = [str(ROOT / command[0]), *command[1:]]
        code = main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 -- reported, then the exit code says it
        traceback.print_exc()
        code = 1
    finally:
        # As the interpreter's own exit would: exit handlers (the metrics directory's removal).
        atexit._run_exitfuncs()  # noqa: SLF001 -- no public call runs them
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _name_process(name: str) -> None:
    """The process's name (ps, top) says which one it is: the command line stays run.py's."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.prctl(_PR_SET_NAME, f"glimpse-{name}".encode()[:15], 0, 0, 0)


def main() -> int:
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    from glimpse.malloc_tuning import limit_malloc_retention  # noqa: PLC0415 -- forked children keep it

    limit_malloc_retention()
    fork = preload(PRELOAD)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = {
        name: start(name, command, fork=fork) for name, command in read_procfile(PROCFILE).items()
    }
    while not stopping and all(child.poll() is None for child in children.values()):
        time.sleep(0.2)
    for name, child in children.items():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        else:
            print(f"run: {name} exited with {child.returncode}", file=sys.stderr)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    codes = {name: child.returncode for name, child in children.items()}
    print(f"run: stopped {codes}", file=sys.stderr)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
