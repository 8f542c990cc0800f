"""`make run`'s topology (scripts/run.py: API, worker and scrubber daemon from deploy/Procfile)
with an operator's glance-api.conf asking for delayed delete."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from barbican_double import BarbicanDouble, running_barbican
from support import ROOT, command, environment, free_port
from topology import OCTET, wait_for

KEY = "cinder_encryption_key_id"
KEY_POLICY = "cinder_encryption_key_deletion_policy"
SCRUB_TIME = 30  # long enough for the restore below to come first, even on a busy machine
# (test processes side by side under make test: a restore came 10 s after its delete)


@contextlib.contextmanager
def make_run(
    tmp_path: Path, port: int, barbican: BarbicanDouble
) -> Iterator[subprocess.Popen[bytes]]:
    data = tmp_path / "data"
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        "\n".join(
            [
                "[DEFAULT]",
                "delayed_delete = true",
                f"scrub_time = {SCRUB_TIME}",
                "[glance_store]",
                f"filesystem_store_datadir = {data / 'images'}",
                "[os_glance_staging_store]",
                f"filesystem_store_datadir = {data / 'staging'}",
                "[os_glance_tasks_store]",
                f"filesystem_store_datadir = {data / 'tasks'}",
                "[database]",
                f"connection = sqlite:///{data / 'glimpse.sqlite'}",
                "[celery]",
                f"broker_data_dir = {data / 'broker'}",
                "[scrubber]",
                "wakeup_time = 1",
                "[barbican]",
                f"barbican_endpoint = {barbican.url}",
            ]
        )
        + "\n"
    )
    env = environment(GLIMPSE_CONFIG=str(conf), GLIMPSE_BIND_PORT=str(port))
    data.mkdir()
    synced = subprocess.run(
        [command("glimpse-manage"), "db", "sync"], env=env, capture_output=True, check=False
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with (tmp_path / "run.log").open("wb") as log:
        # Exactly what `make run` runs after the db sync, from the repository root.
        run = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield run
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_make_run_with_delayed_delete(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    images = tmp_path / "data" / "images"
    with (
        running_barbican() as barbican,
        make_run(tmp_path, port, barbican) as run,
        httpx.Client(base_url=url, timeout=30) as client,
    ):

        def answers() -> bool | None:
            assert run.poll() is None, (tmp_path / "run.log").read_text(errors="replace")
            with contextlib.suppress(httpx.TransportError):
                return client.get("/versions").status_code == 200 or None
            return None

        wait_for("make run's API to answer", answers, 90)
        body = {"disk_format": "raw", "container_format": "bare"}
        scrubbed = client.post("/v2/images", json=body).json()["id"]
        key_id = barbican.add_secret("key-of-the-restored-image")
        encrypted = {**body, KEY: key_id, KEY_POLICY: "on_image_deletion"}
        restored = client.post("/v2/images", json=encrypted).json()["id"]
        kept = os.urandom(300_000)
        for image_id, data in ((scrubbed, b"s" * 4096), (restored, kept)):
            put = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
            assert put.status_code == 204

        assert client.delete(f"/v2/images/{restored}").status_code == 204
        assert client.delete(f"/v2/images/{scrubbed}").status_code == 204
        assert client.get(f"/v2/images/{scrubbed}").status_code == 404
        # Deleted, yet its data waits in the store for scrub_time.
        assert (images / scrubbed).is_file()
        restore = subprocess.run(
            [command("glimpse-scrubber"), "--restore", restored],
            env=environment(GLIMPSE_CONFIG=str(tmp_path / "glance-api.conf")),
            capture_output=True,
            check=False,
        )
        assert restore.returncode == 0, restore.stdout + restore.stderr

        data_file = images / scrubbed
        wait_for("the scrubber to remove the data", lambda: not data_file.exists() or None)
        restored_image = client.get(f"/v2/images/{restored}").json()
        assert restored_image["status"] == "active"
        assert restored_image[KEY] == key_id
        assert key_id in barbican.secrets
        assert barbican.deletes(key_id) == []
        assert client.get(f"/v2/images/{restored}/file").content == kept
        assert sorted(p.name for p in images.iterdir()) == [restored]
    assert run.returncode == 0, (tmp_path / "run.log").read_text(errors="replace")
