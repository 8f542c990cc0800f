"""Which sections of a config file are store sections: those enabled_backends names (from the
file or the environment) and the reserved stores; every option of any other section is
ignored with a warning, as Glance ignores sections it has no options for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings

SECTIONS = """\
[DEFAULT]
{backends}

[fast]
filesystem_store_datadir = {tmp}/fast
store_description = Fast disks

[file]
filesystem_store_datadir = {tmp}/file-section

[os_glance_staging_store]
filesystem_store_datadir = {tmp}/staging

[glance.store.http.store]
https_insecure = true
"""


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_only_enabled_and_reserved_sections_are_stores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text(SECTIONS.format(backends="enabled_backends = fast:file", tmp=tmp_path))
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path)
    assert sorted(settings.stores) == ["fast", "os_glance_staging_store"]
    assert settings.store_datadir("fast") == tmp_path / "fast"
    assert settings.store_options("fast").store_description == "Fast disks"
    assert settings.store_datadir("os_glance_staging_store") == tmp_path / "staging"
    assert _warnings(caplog) == [
        f"Ignoring unknown option [file] filesystem_store_datadir in {path}",
        f"Ignoring unknown option [glance.store.http.store] https_insecure in {path}",
    ]


def test_enabled_backends_from_the_environment_selects_the_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLIMPSE_ENABLED_BACKENDS", "file:file, fast:file")
    path = tmp_path / "glance-api.conf"
    path.write_text(SECTIONS.format(backends="", tmp=tmp_path))
    settings = load_settings(path)
    assert settings.enabled_backends == {"file": "file", "fast": "file"}
    assert settings.store_datadir("file") == tmp_path / "file-section"
    assert settings.store_datadir("fast") == tmp_path / "fast"


def test_single_store_mode_has_no_store_section(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without enabled_backends the built-in file store takes [glance_store]'s directory; a
    # [file] section means nothing to Glance there, nor here.
    path = tmp_path / "glance-api.conf"
    path.write_text(SECTIONS.format(backends="", tmp=tmp_path))
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path)
    assert settings.multistore is False
    assert settings.store_datadir("file") == Path("data/images")
    assert sorted(settings.stores) == ["os_glance_staging_store"]
    assert f"Ignoring unknown option [file] filesystem_store_datadir in {path}" in _warnings(caplog)


def test_an_invalid_network_names_the_option(tmp_path: Path) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text("[DEFAULT]\ntrusted_proxies = 10.0.0.0/8, 10.1.2.3/16\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f"Invalid configuration value for [DEFAULT] trusted_proxies in {path}: expected an "
        "address or network (e.g. 10.0.0.0/24): 10.1.2.3/16 has host bits set"
    )
