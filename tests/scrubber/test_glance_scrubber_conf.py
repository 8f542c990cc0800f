"""A glance-scrubber.conf written as Glance's sample writes it: the scrubber's options live in
[DEFAULT] (wakeup_time, scrub_time, delayed_delete, scrub_pool_size, daemon), and
`daemon = True` makes glimpse-scrubber a daemon without --daemon, as Glance's scrubber does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import load_settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image
from topology import OCTET, shared_sections, topology, wait_for

# The sample's own comments and layout (etc/glance-scrubber.conf of Glance 33), values set.
GLANCE_SCRUBBER_CONF = """\
[DEFAULT]

#
# From glance.scrubber
#

# DEPRECATED:
# The amount of time, in seconds, to delay image scrubbing.
#  (integer value)
# Minimum value: 0
scrub_time = 0

# DEPRECATED:
# The size of thread pool to be used for scrubbing images.
#  (integer value)
# Minimum value: 1
scrub_pool_size = 2

# DEPRECATED:
# Turn on/off delayed delete.
#  (boolean value)
delayed_delete = True

# DEPRECATED:
# Time interval, in seconds, between scrubber runs in daemon mode.
#  (integer value)
# Minimum value: 0
wakeup_time = {wakeup_time}

# DEPRECATED:
# Run scrubber as a daemon.
#  (boolean value)
daemon = True

#
# From oslo.log
#

# If set to true, the logging level will be set to DEBUG instead of the default
# INFO level. (boolean value)
# Note: This option can be changed without restarting.
debug = True

[database]

#
# From oslo.db
#

# The SQLAlchemy connection string to use to connect to the database. (string
# value)
connection = {connection}

[glance_store]

#
# From glance.store
#

# Directory to which the filesystem backend store writes images.
#  (string value)
filesystem_store_datadir = {datadir}
"""


def scrubber_conf(tmp_path: Path, connection: str, wakeup_time: int = 1) -> Path:
    path = tmp_path / "glance-scrubber.conf"
    path.write_text(
        GLANCE_SCRUBBER_CONF.format(
            wakeup_time=wakeup_time, connection=connection, datadir=tmp_path / "images"
        )
    )
    return path


def test_the_options_load_from_default(tmp_path: Path) -> None:
    settings = load_settings(scrubber_conf(tmp_path, "sqlite:///x.sqlite", wakeup_time=7))
    assert settings.scrubber.wakeup_time == 7
    assert settings.daemon is True
    assert settings.delayed_delete is True
    assert (settings.scrub_time, settings.scrub_pool_size) == (0, 2)
    assert settings.debug is True


def test_a_scrubber_section_value_wins(tmp_path: Path) -> None:
    path = scrubber_conf(tmp_path, "sqlite:///x.sqlite", wakeup_time=7)
    path.write_text(path.read_text() + "\n[scrubber]\nwakeup_time = 11\n")
    assert load_settings(path).scrubber.wakeup_time == 11


def image_status(database_url: str, image_id: str) -> str:
    async def read() -> str:
        database = Database.from_url(database_url, pool_size=1)
        try:
            async with database.read() as session:
                status = await session.execute(sa.select(Image.status).where(Image.id == image_id))
                return str(status.scalar_one())
        finally:
            await database.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_daemon_true_keeps_the_scrubber_running_every_wakeup_time(
    tmp_path: Path, database_url: str
) -> None:
    api_conf = [
        "[DEFAULT]",
        "delayed_delete = true",
        *shared_sections(tmp_path, database_url, "filesystem://"),
        f"broker_data_dir = {tmp_path / 'broker'}",
    ]
    with (
        topology(tmp_path, api_conf) as topo,
        httpx.Client(base_url=topo.url, timeout=30) as client,
    ):
        topo.start_api()
        # No --daemon: the file's `daemon = True` decides.
        scrubber = topo.start(
            "glimpse-scrubber", "--config-file", str(scrubber_conf(tmp_path, database_url))
        )
        passes = "running check_database"
        wait_for("a first pass", lambda: passes in topo.log("glimpse-scrubber") or None)
        # Deleted after that pass: only a later one, wakeup_time on, can scrub it.
        body = {"disk_format": "raw", "container_format": "bare", "name": "scrub-me"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        uploaded = client.put(f"/v2/images/{image_id}/file", content=b"x" * 4096, headers=OCTET)
        assert uploaded.status_code == 204, uploaded.text
        assert client.delete(f"/v2/images/{image_id}").status_code == 204
        assert image_status(database_url, image_id) == "pending_delete"
        assert (tmp_path / "images" / image_id).exists()
        # A poll limit well below the default wakeup_time (300 s): only [DEFAULT]'s 1 s passes.
        wait_for(
            "the daemon to scrub the image",
            lambda: image_status(database_url, image_id) == "deleted" or None,
            within=60,
        )
        assert not (tmp_path / "images" / image_id).exists()
        assert scrubber.poll() is None, topo.log("glimpse-scrubber")  # still running
        assert topo.log("glimpse-scrubber").count(passes) >= 2


def test_restore_is_refused_as_a_daemon(tmp_path: Path) -> None:
    with topology(tmp_path, []) as topo:
        path = scrubber_conf(tmp_path, f"sqlite:///{tmp_path / 'glimpse.sqlite'}")
        image_id = "9f1a7c3e-44a5-4c1e-8c3b-2a7d51c0e6a1"
        refused = topo.run("glimpse-scrubber", "--config-file", str(path), "--restore", image_id)
        assert refused.returncode == 2
        assert "--restore cannot run as a daemon" in refused.stderr
        # --nodaemon makes it one action again (the image does not exist: exit 1, as before).
        synced = topo.run("glimpse-manage", "--config-file", str(path), "db", "sync")
        assert synced.returncode == 0, synced.stderr
        once = topo.run(
            "glimpse-scrubber", "--config-file", str(path), "--nodaemon", "--restore", image_id
        )
        assert once.returncode == 1, once.stderr
        assert f"cannot restore: image {image_id} does not exist" in once.stderr
