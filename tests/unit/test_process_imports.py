"""What the worker and the scrubber import: only the libraries their configuration uses, and in
the worker all of them before the pool forks, so that the pool processes share them.

Each check runs in a fresh interpreter: this one has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import environment

CONFIG = """\
[DEFAULT]
enabled_backends = {backends}

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {tmp}/fast

[os_glance_staging_store]
filesystem_store_datadir = {tmp}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {tmp}/tasks

[database]
connection = sqlite:///{tmp}/glimpse.sqlite

[celery]
broker_data_dir = {tmp}/broker
"""

S3_SECTION = """
[cold]
s3_store_host = 127.0.0.1:9000
s3_store_access_key = access
s3_store_secret_key = secret
s3_store_bucket = images
"""

SCRUBBER = """
from glimpse.config import load_settings
from glimpse_scrubber.jobs import ScrubberRuntime
import glimpse_scrubber.main

ScrubberRuntime.build(load_settings(None))
"""

WORKER_PARENT = """
from glimpse.config import load_settings
from glimpse_worker.celery_app import create_celery

create_celery(load_settings(None))
"""

FREEZE = """
import gc
from celery.signals import worker_before_create_process
from glimpse.config import load_settings
from glimpse_worker.celery_app import create_celery

create_celery(load_settings(None))
before = gc.get_freeze_count()
worker_before_create_process.send(sender=None)
print(json.dumps([before, gc.get_freeze_count()]))
"""

LOADED = """
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in WATCHED
    or name in WATCHED)))
"""

WATCHED = {
    "botocore",
    "aiobotocore",
    "celery",
    "cryptography",
    "aiosqlite",
    "glimpse.stores.filesystem",
    "glimpse.stores.s3",
}


def run(code: str, config: Path) -> object:
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\nWATCHED = {WATCHED!r}\n{code}"],
        env=environment(GLIMPSE_CONFIG=str(config)),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def top_level(loaded: object) -> set[str]:
    assert isinstance(loaded, list)
    return {name if name.startswith("glimpse.") else name.split(".")[0] for name in loaded}


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    config = tmp_path / "glance-api.conf"
    config.write_text(CONFIG.format(tmp=tmp_path, backends="fast:file"))
    return config


@pytest.fixture
def s3_config(tmp_path: Path) -> Path:
    config = tmp_path / "glance-api.conf"
    config.write_text(CONFIG.format(tmp=tmp_path, backends="fast:file, cold:s3") + S3_SECTION)
    return config


def test_scrubber_without_s3_store_or_token_key_loads_no_botocore_celery_or_cryptography(
    file_config: Path,
) -> None:
    loaded = top_level(run(SCRUBBER + LOADED, file_config))
    assert loaded == {"aiosqlite", "glimpse.stores.filesystem"}


def test_worker_parent_imports_its_store_and_database_drivers_before_the_fork(
    file_config: Path,
) -> None:
    loaded = top_level(run(WORKER_PARENT + LOADED, file_config))
    assert loaded == {"aiosqlite", "celery", "cryptography", "glimpse.stores.filesystem"}


def test_worker_parent_imports_the_s3_driver_when_an_s3_store_is_enabled(s3_config: Path) -> None:
    loaded = top_level(run(WORKER_PARENT + LOADED, s3_config))
    assert {"glimpse.stores.s3", "botocore", "aiobotocore"} <= loaded


def test_worker_parent_freezes_its_objects_just_before_the_pool_forks(file_config: Path) -> None:
    before, after = run(FREEZE, file_config)  # type: ignore[misc]  # a JSON pair
    assert before == 0
    assert after > 10_000
