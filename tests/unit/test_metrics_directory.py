"""The multiprocess metrics directory: one per process tree, in a folder of this user's; each
start removes those of processes that are gone (killed, or ended by a re-raised signal)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from glimpse.cli import common


def test_each_start_gets_a_fresh_directory_and_sweeps_the_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # setenv first: delenv of an absent variable records nothing, so the directory that
    # prepare_multiprocess_metrics() puts in the environment would outlive this test.
    monkeypatch.setenv(common.MULTIPROC_ENV, "")
    monkeypatch.delenv(common.MULTIPROC_ENV)
    base = tmp_path / f"glimpse-metrics-{os.getuid()}"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = base / gone.stdout.strip()
    dead.mkdir(parents=True)
    (dead / "counter_1.db").write_bytes(b"x")
    living = base / str(os.getppid())  # our parent is alive
    living.mkdir()
    monkeypatch.setattr(common.atexit, "register", lambda *_, **__: None)

    common.prepare_multiprocess_metrics()

    mine = Path(os.environ[common.MULTIPROC_ENV])
    assert mine == base / str(os.getpid())
    assert list(mine.iterdir()) == []
    assert not dead.exists()
    assert living.exists()


def test_a_directory_named_in_the_environment_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.MULTIPROC_ENV, str(tmp_path))
    common.prepare_multiprocess_metrics()
    assert os.environ[common.MULTIPROC_ENV] == str(tmp_path)
