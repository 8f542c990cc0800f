"""`[os_glance_staging_store]` as an s3 store: its s3_store_* options say so, with the same
names and rules as an enabled_backends s3 store; what cannot work stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.config.reserved import STAGING_STORE, TASKS_STORE

S3_STAGING = """\
[DEFAULT]
enabled_backends = fast:file, cold:s3

[fast]
filesystem_store_datadir = {tmp}/fast

[cold]
s3_store_host = http://127.0.0.1:9000
s3_store_access_key = images-access
s3_store_secret_key = images-secret
s3_store_bucket = images

[os_glance_staging_store]
s3_store_host = 127.0.0.1:9000
s3_store_access_key = staging-access
s3_store_secret_key = staging-secret
s3_store_bucket = staging
s3_store_bucket_url_format = path
"""


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glance-api.conf"
    path.write_text(text.format(tmp=tmp_path))
    return path


def test_s3_options_make_the_staging_store_an_s3_store(tmp_path: Path) -> None:
    settings = load_settings(_conf(tmp_path, S3_STAGING))
    assert settings.reserved_store_type(STAGING_STORE) == "s3"
    assert settings.reserved_store_type(TASKS_STORE) == "file"
    staging = settings.store_options(STAGING_STORE)
    assert (staging.s3_store_bucket, staging.s3_store_bucket_url_format) == ("staging", "path")


def test_a_staging_store_without_s3_options_stays_a_file_store(tmp_path: Path) -> None:
    text = "[os_glance_staging_store]\nfilesystem_store_datadir = {tmp}/staging\n"
    settings = load_settings(_conf(tmp_path, text))
    assert settings.reserved_store_type(STAGING_STORE) == "file"
    assert settings.store_datadir(STAGING_STORE) == tmp_path / "staging"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            ("s3_store_bucket = staging\n", ""),
            r"\[os_glance_staging_store\] an s3 staging store needs s3_store_bucket$",
        ),
        (
            ("s3_store_secret_key = staging-secret\n", ""),
            r"\[os_glance_staging_store\] an s3 staging store needs s3_store_secret_key$",
        ),
        (
            ("s3_store_bucket = staging\n", "s3_store_bucket = images\n"),
            r"stores 'cold' and 'os_glance_staging_store' share the bucket images",
        ),
        (
            (
                "s3_store_bucket = staging\n",
                "s3_store_bucket = staging\nfilesystem_store_datadir = x\n",
            ),
            r"sets both filesystem_store_datadir and s3_store_\* options",
        ),
    ],
)
def test_an_unusable_s3_staging_store_stops_start_up(
    tmp_path: Path, change: tuple[str, str], error: str
) -> None:
    old, new = change
    staging_part = S3_STAGING.split("[os_glance_staging_store]")[1]
    text = S3_STAGING.replace(staging_part, staging_part.replace(old, new))
    with pytest.raises(ConfigError, match=error):
        load_settings(_conf(tmp_path, text))


def test_the_tasks_store_takes_no_s3_options(tmp_path: Path) -> None:
    text = "[os_glance_tasks_store]\ns3_store_bucket = work\n"
    with pytest.raises(ConfigError, match=r"\[os_glance_tasks_store\] takes no s3_store_\*"):
        load_settings(_conf(tmp_path, text))
