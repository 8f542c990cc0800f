"""`make run`: start every process of deploy/Procfile and stop them all together.

Ctrl-C (or SIGTERM, or any one process ending) stops the rest with SIGTERM, waits for a clean
exit, and only then kills. The grace period is longer than a Celery worker's warm shutdown,
which on the server-less filesystem broker takes several seconds.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "deploy" / "Procfile"
GRACE_SECONDS = 30


def read_procfile(path: Path) -> dict[str, list[str]]:
    processes = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            processes[name.strip()] = shlex.split(command)
    return processes


def main() -> int:
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = {
        name: subprocess.Popen(command, cwd=ROOT)  # noqa: S603 -- our own Procfile
        for name, command in read_procfile(PROCFILE).items()
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
