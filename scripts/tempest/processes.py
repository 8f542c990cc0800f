"""The processes a tempest run starts, each in its own process group, and their stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STOP_GRACE = 20.0  # seconds between SIGTERM and SIGKILL


class HarnessError(Exception):
    """Something the run needs could not be installed, configured or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_logged(
    args: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> None:
    """Run a set-up command to its end, its output appended to `log`; fail with the log's tail."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(  # noqa: S603 -- our own commands
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise HarnessError(f"{Path(args[0]).name} failed ({result.returncode}):\n{tail}")


def run_group(args: list[str], log: Path, *, env: dict[str, str], cwd: Path, timeout: float) -> int:
    """Run `args` to its end in a process group of its own, its output in `log`; if anything
    interrupts the wait (a signal, the timeout), the whole group is killed, children too."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 -- our own commands
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return process.wait(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Supervisor:
    """Starts long-running processes with their output in `logs/<name>.log`; stops them all."""

    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], *, env: dict[str, str], cwd: Path
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 -- our own commands
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the group reaches its children too
            )
        self.running.append((name, process))
        return process

    def log_tail(self, name: str, size: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def check_alive(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise HarnessError(
                    f"{name} exited with {process.returncode}:\n{self.log_tail(name)}"
                )

    def wait_http(self, what: str, url: str, within: float = 120.0) -> None:
        """Poll `url` until it answers below 500; fail early if a process died meanwhile."""
        deadline = time.monotonic() + within
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                with contextlib.suppress(httpx.TransportError):
                    if client.get(url).status_code < 500:  # noqa: PLR2004 -- any answer but 5xx
                        return
                time.sleep(0.3)
        raise HarnessError(f"{what} did not answer at {url} within {within:.0f} s")

    def stop_all(self, report: Callable[[str], None]) -> None:
        """SIGTERM every group, newest first, then SIGKILL what is left after the grace."""
        for _, process in reversed(self.running):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for name, process in reversed(self.running):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                report(f"{name} did not stop within {STOP_GRACE:.0f} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_GRACE)
            # The group may outlive its leader (a worker's pool processes): make sure.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.running.clear()
