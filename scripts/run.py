"""`make run`: start every process of deploy/Procfile and stop them all together.

Ctrl-C (or SIGTERM, or any one process ending) stops the rest with SIGTERM, waits for a clean
exit, and only then kills. The grace period is longer than a Celery worker's warm shutdown,
which on the server-less filesystem broker takes several seconds.

The Procfile's Glimpse commands (this environment's console scripts) are forked from one
process that has imported the libraries they all use (PRELOAD), rather than started afresh:
the API, the worker and the scrubber then share those pages copy-on-write instead of holding
a copy each. Nothing is built before the fork, only imported; each entry point reads its
configuration as it would started on its own. That process exits once it has forked them (the
pages every one of them has written to since are then freed): this supervisor, which imports
nothing of Glimpse, adopts them as a child subreaper. Any other command, and all of them if the
imports brought in prometheus_client (which chooses how to count when imported, before the API
and the worker have chosen their metrics directories), starts afresh.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "deploy" / "Procfile"
GRACE_SECONDS = 30
# What the services share, imported before the fork. Never glimpse.metrics, glimpse_api.app or
# the worker's tasks: they import prometheus_client.
PRELOAD: Final = (
    "glimpse.cli.common",
    "glimpse.malloc_tuning",
    "glimpse.fork_sharing",
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
    # What the API's job publisher loads as it connects.
    "celery.app.amqp",
    "celery.app.routes",
    "celery.backends.filesystem",
    "celery.events.dispatcher",
    "celery.fixups.django",
    "kombu.mixins",
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
_PR_SET_CHILD_SUBREAPER: Final = 36


class Children:
    """The processes this supervisor waits for, by pid: its children, and those it adopted.
    Reaping takes any child that ended (orphans of a process of theirs too, which end up here)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.codes: dict[str, int] = {}

    def reap(self) -> None:
        names = {pid: name for name, pid in self.pids.items()}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in names:
                self.codes[names[pid]] = os.waitstatus_to_exitcode(status)

    def running(self) -> list[str]:
        self.reap()
        return [name for name in self.pids if name not in self.codes]

    def signal(self, signum: int) -> None:
        for name in self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pids[name], signum)

    def wait(self, timeout: float) -> bool:
        """Whether all have ended within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def read_procfile(path: Path) -> dict[str, list[str]]:
    processes = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            processes[name.strip()] = shlex.split(command)
    return processes


def start_all(processes: dict[str, list[str]]) -> Children:
    """Start `processes` from a child that preloads, forks them and exits; they are adopted."""
    read_end, write_end = os.pipe()
    zygote = os.fork()
    if zygote == 0:
        os.close(read_end)
        _zygote(processes, write_end)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        started = {name: int(pid) for name, pid in (line.split() for line in report)}
    os.waitpid(zygote, 0)  # from here on its children are this process's
    return Children(started)


def _zygote(processes: dict[str, list[str]], report: int) -> NoReturn:
    code = 0
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        from glimpse.malloc_tuning import limit_malloc_retention  # noqa: PLC0415 -- here only

        limit_malloc_retention()
        try:
            fork = preload(PRELOAD)
        except Exception:  # noqa: BLE001 -- any failure: the processes start afresh instead
            import traceback  # noqa: PLC0415 -- only on failure

            traceback.print_exc()
            fork = False
        with os.fdopen(report, "w") as pids:
            for name, command in processes.items():
                pid = start(name, command, fork=fork, report=report)
                print(name, pid, file=pids, flush=True)
    except BaseException:  # noqa: BLE001 -- reported; the supervisor sees what did not start
        import traceback  # noqa: PLC0415 -- only on failure

        traceback.print_exc()
        code = 1
    os._exit(code)


def preload(modules: tuple[str, ...]) -> bool:
    """Import `modules` and settle them for the fork (glimpse.fork_sharing); whether the
    children may be forked."""
    import importlib  # noqa: PLC0415 -- the supervisor imports as little as it can

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
    from glimpse.fork_sharing import settle_before_fork  # noqa: PLC0415 -- preloaded above

    settle_before_fork()
    return True


def entry_point(command: list[str]) -> Callable[[], object] | None:
    """The function of `command`'s program when it is a console script of this environment."""
    from importlib.metadata import entry_points  # noqa: PLC0415 -- the zygote's only

    program = (ROOT / command[0]).resolve()
    if program.parent != Path(sys.prefix, "bin").resolve():
        return None
    for script in entry_points(group="console_scripts", name=program.name):
        loaded: Callable[[], object] = script.load()
        return loaded
    return None


def start(name: str, command: list[str], *, fork: bool, report: int) -> int:
    """The pid of `command`, forked from this process or started afresh (without `report`, the
    pipe on which the supervisor waits for the zygote's end)."""
    main = entry_point(command) if fork else None
    if main is None:
        import subprocess  # noqa: PLC0415 -- the zygote's only

        return subprocess.Popen(command, cwd=ROOT).pid  # noqa: S603 -- our own Procfile
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(report)
        _run_child(name, command, main)
    return pid


def _run_child(name: str, command: list[str], main: Callable[[], object]) -> NoReturn:
    """The forked process: runs `main` as the command would, then exits (never returns)."""
    import atexit  # noqa: PLC0415 -- the children's only

    code: object = 1
    try:
        _name_process(name)
        sys.argv = [str(ROOT / command[0]), *command[1:]]
        code = main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 -- reported, then the exit code says it
        import traceback  # noqa: PLC0415 -- only on failure

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
        ctypes.CDLL(None).prctl(_PR_SET_NAME, f"glimpse-{name}".encode()[:15], 0, 0, 0)


def main() -> int:
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # The zygote's children, orphaned when it exits, become this process's.
    if ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("run: cannot become a child subreaper", file=sys.stderr)
        return 1
    processes = read_procfile(PROCFILE)
    children = start_all(processes)
    while not stopping and len(children.running()) == len(processes):
        time.sleep(0.2)
    for name, code in children.codes.items():
        print(f"run: {name} exited with {code}", file=sys.stderr)
    children.signal(signal.SIGTERM)
    if not children.wait(GRACE_SECONDS):
        children.signal(signal.SIGKILL)
        children.wait(GRACE_SECONDS)
    print(f"run: stopped {children.codes}", file=sys.stderr)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
