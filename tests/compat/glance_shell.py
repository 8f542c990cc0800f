"""The `glance` command line client run as a user would, and readers of the tables it prints."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

GLANCE = str(Path(sys.executable).parent / "glance")
TIMEOUT = 120  # seconds for one command


def _command(url: str, args: tuple[str, ...]) -> list[str]:
    return [
        GLANCE,
        "--os-image-url",
        url,
        "--os-auth-token",
        "compat-token",
        "--os-image-api-version",
        "2",
        *args,
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


def glance_all(url: str, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run several `glance` commands at once (each start-up costs seconds of imports).

    stdin is /dev/null, so image-create always gets --file here.
    """
    processes = [
        (
            args,
            subprocess.Popen(
                _command(url, args),
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    results = []
    for args, process in processes:
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def glance(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return glance_all(url, args)[0]


def _check(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"glance {' '.join(result.args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def glance_ok(url: str, *args: str) -> str:
    return _check(glance(url, *args))


def glance_all_ok(url: str, *commands: tuple[str, ...]) -> list[str]:
    return [_check(result) for result in glance_all(url, *commands)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")[1:-1]]


def parse_properties(output: str) -> dict[str, str]:
    """The `Property | Value` table of image-show/-create/-update; wrapped values are joined."""
    properties: dict[str, str] = {}
    last = None
    for line in output.splitlines():
        if not line.startswith("|"):
            continue
        key, value = _cells(line)
        if key == "Property" and value == "Value":
            continue
        if key:
            properties[key] = value
            last = key
        elif last is not None:
            properties[last] += value
    return properties


def parse_list(output: str) -> list[dict[str, str]]:
    """The table of image-list: one dict per row, keyed by the column titles."""
    rows = [_cells(line) for line in output.splitlines() if line.startswith("|")]
    if not rows:
        return []
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as data:
        while chunk := data.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
