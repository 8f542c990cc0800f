"""deploy/compose.yaml on the Docker engine of this machine, as the compose tests drive it.

Everything goes through the `docker` command line under one project name (`glimpse-test`), so
the stack never touches a deployment of the same files under another name. Clients reach the
stack only through its published ports on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
TEST_FILE = Path(__file__).resolve().parent / "compose.test.yaml"
PROJECT = "glimpse-test"
ADMIN = "admin"
MiB = 1024 * 1024
WEB_FILE = "web.raw"
SLOW_FILE = "slow.raw"
FIGURES: dict[str, str] = {}  # printed at the end of the run (conftest.py)


class DockerUnavailable(Exception):
    """No Docker engine or no Compose v2 answers on this machine."""


def docker_ready() -> None:
    """Raise DockerUnavailable with what docker said, unless an engine and Compose v2 answer."""
    for args in (
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        ["docker", "compose", "version"],
    ):
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DockerUnavailable(f"`{' '.join(args)}`: {exc}") from exc
        if result.returncode != 0:
            raise DockerUnavailable(f"`{' '.join(args)}`: {result.stderr.strip()}")


@dataclass
class Stack:
    env: dict[str, str]
    api_url: str
    keystone_url: str
    admin_password: str
    log: list[str] = field(default_factory=list)

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), "-f", str(TEST_FILE)]
        started = time.monotonic()
        result = subprocess.run(
            [*argv, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.log.append(
            f"compose {' '.join(args)}: {result.returncode} in {time.monotonic() - started:.0f}s"
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            msg = f"docker compose {command} failed ({result.returncode}):\n{result.stderr[-6000:]}"
            raise AssertionError(msg)
        return result

    def up(self, *extra: str, timeout: float = 600) -> float:
        """`up -d --wait`: every service running and healthy, one-shot jobs done; seconds taken."""
        started = time.monotonic()
        self.compose(
            "up", "-d", "--wait", "--wait-timeout", str(int(timeout)), *extra, timeout=timeout + 60
        )
        return time.monotonic() - started

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        args = ["ps", "--all", "--format", "json"]
        if service is not None:
            args.append(service)
        out = self.compose(*args).stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            rows: list[dict[str, Any]] = json.loads(out)
            return rows
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def running(self, service: str) -> list[dict[str, Any]]:
        return [c for c in self.containers(service) if c["State"] == "running"]

    def exec(
        self, service: str, *command: str, index: int = 1, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "--index", str(index), service, *command, check=check)

    def files(self, service: str, directory: str) -> dict[str, int]:
        """Name -> size of the files in a directory of a container (a volume's view)."""
        listing = self.exec(
            service, "find", directory, "-maxdepth", "1", "-type", "f", "-printf", "%f %s\\n"
        ).stdout
        return {
            name: int(size) for name, size in (line.rsplit(" ", 1) for line in listing.splitlines())
        }

    def docker(self, *args: str) -> str:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def address(self, container: str) -> str:
        return self.docker(
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ).strip()

    def tail(self, lines: int = 60) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(lines), check=False)
        return "\n".join(self.log) + "\n" + result.stdout[-20000:]

    def down(self) -> None:
        """Remove containers, networks and volumes, then this project's dangling image layers
        (the tagged images stay: they are the next run's warm cache)."""
        self.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "20", check=False, timeout=300
        )
        subprocess.run(
            [
                "docker",
                "image",
                "prune",
                "--force",
                "--filter",
                f"label=com.docker.compose.project={PROJECT}",
            ],
            capture_output=True,
            timeout=300,
            check=False,
        )

    # --- as a client ----------------------------------------------------------------------

    def login(self, password: str | None = None) -> tuple[str, dict[str, Any]]:
        """A project-scoped token for the admin, from Keystone's published port, and its body."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": ADMIN,
                            "domain": {"id": "default"},
                            "password": password or self.admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": ADMIN, "domain": {"id": "default"}}},
            }
        }
        response = httpx.post(f"{self.keystone_url}/v3/auth/tokens", json=body, timeout=60)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"], response.json()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"X-Auth-Token": token}, timeout=120)


def free_port() -> int:
    import socket  # noqa: PLC0415 -- only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stack_environment(
    files: Path, admin_password: str, service_password: str
) -> tuple[dict[str, str], int, int]:
    api_port, keystone_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLIMPSE_", "COMPOSE_"))}
    env.update(
        GLIMPSE_PUBLISH_ADDRESS="127.0.0.1",
        GLIMPSE_API_PORT=str(api_port),
        GLIMPSE_KEYSTONE_PORT=str(keystone_port),
        GLIMPSE_ADMIN_PASSWORD=admin_password,
        GLIMPSE_SERVICE_PASSWORD=service_password,
        GLIMPSE_TEST_FILES=str(files),
    )
    return env, api_port, keystone_port


class WebFiles:
    """What the HTTP server on the compose network serves, and the digests of each file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = {WEB_FILE: os.urandom(6 * MiB), SLOW_FILE: os.urandom(12 * MiB)}
        for name, data in self.data.items():
            (directory / name).write_bytes(data)
            (directory / name).chmod(0o644)
        directory.chmod(0o755)

    def md5(self, name: str) -> str:
        return hashlib.md5(self.data[name], usedforsecurity=False).hexdigest()
