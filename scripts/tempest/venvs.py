"""Keystone's and tempest's virtualenvs, built with the repository's uv under `.cache/tempest/`.

Each is named after a hash of its requirement files, so it is reused while they stay the same and
rebuilt (the old one removed) when they change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from processes import HarnessError, run_logged

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "tempest"
KEYSTONE_REQUIREMENTS = (
    ROOT / "tests" / "keystone" / "requirements.txt",
    ROOT / "scripts" / "tempest" / "keystone-server.txt",
)
TEMPEST_REQUIREMENTS = (ROOT / "scripts" / "tempest" / "requirements.txt",)


def _uv() -> str:
    bundled = ROOT / ".tools" / "bin" / "uv"
    found = str(bundled) if bundled.exists() else shutil.which("uv")
    if found is None:
        raise HarnessError("no uv: run `make tempest` (it bootstraps uv into .tools/)")
    return found


def ensure_venv(name: str, requirements: tuple[Path, ...], say: Callable[[str], None]) -> Path:
    """The bin directory of virtualenv `name` holding exactly `requirements`."""
    digest = hashlib.sha256()
    for path in requirements:
        digest.update(path.read_bytes())
    venv = CACHE / f"{name}-{digest.hexdigest()[:16]}"
    if (venv / ".complete").exists():
        return venv / "bin"
    for stale in CACHE.glob(f"{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    say(f"installing {name} into {venv.relative_to(ROOT)} (once per requirements change)")
    log = CACHE / f"{name}.install.log"
    log.unlink(missing_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    uv = _uv()
    run_logged([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], log, env=env)
    files = [arg for path in requirements for arg in ("-r", str(path))]
    python = str(venv / "bin" / "python")
    run_logged([uv, "pip", "install", "--python", python, *files], log, env=env)
    (venv / ".complete").write_text(digest.hexdigest())
    return venv / "bin"
