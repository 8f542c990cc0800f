"""Config files written as Glance's samples and docs write them load as oslo.config loads them.

The files below copy the notation of Glance 33's etc/glance-api.conf, etc/glance-image-
import.conf.sample and its admin guide: bracketed lists (`[glance-direct,web-download]`,
`allowed_ports = []`), quoted list items, quoted values, DictOpts. Each is also read with
oslo.config itself, the options declared as Glance declares them, and the values compared.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg, types

from glimpse.config import ConfigError, load_settings
from glimpse.config.notation import parse_dict, parse_list

GLANCE_NOTATION = """\
[DEFAULT]
enabled_import_methods = [glance-direct,web-download]
enabled_backends = fast:file, shared:file, web:http

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {tmp}/fast
store_description = "Fast file store"

[shared]
filesystem_store_datadir = {tmp}/shared
store_description = 'Shared filesystem store'

[web]
http_proxy_information = http:127.0.0.1:3128, https:127.0.0.1:1080

[image_import_opts]
image_import_plugins = ['inject_image_metadata', 'image_conversion']

[inject_metadata_properties]
ignore_user_roles = admin,reader
inject = property1:value1,property2:value:with:colons

[import_filtering_opts]
allowed_schemes = [http,https]
disallowed_schemes = []
allowed_hosts = [127.0.0.1]
disallowed_hosts = []
allowed_ports = []
disallowed_ports = [22, 25]

[image_format]
gpt_safety_checks_nonfatal = mbr

[keystone_authtoken]
service_token_roles = service
memcached_servers = cache1:11211,cache2:11211
"""


def write(tmp_path: Path, text: str, name: str = "glance-api.conf") -> Path:
    path = tmp_path / name
    path.write_text(text.format(tmp=tmp_path))
    return path


def oslo_values(path: Path) -> cfg.ConfigOpts:
    """The same file read by oslo.config, each option declared as Glance declares it."""
    quoted = types.String(quotes=True)
    ports = types.Integer(min=1, max=65535)
    conf = cfg.ConfigOpts()
    conf.register_opts(
        [
            cfg.ListOpt("enabled_import_methods", item_type=quoted, bounds=True),
            cfg.DictOpt("enabled_backends"),
        ]
    )
    conf.register_opts(
        [cfg.StrOpt("store_description"), cfg.StrOpt("filesystem_store_datadir")], group="fast"
    )
    conf.register_opts([cfg.StrOpt("store_description")], group="shared")
    conf.register_opts([cfg.DictOpt("http_proxy_information")], group="web")
    conf.register_opts(
        [cfg.ListOpt("image_import_plugins", item_type=quoted, bounds=True)],
        group="image_import_opts",
    )
    conf.register_opts(
        [cfg.ListOpt("ignore_user_roles"), cfg.DictOpt("inject")],
        group="inject_metadata_properties",
    )
    conf.register_opts(
        [
            cfg.ListOpt("allowed_schemes", item_type=quoted, bounds=True),
            cfg.ListOpt("disallowed_schemes", item_type=quoted, bounds=True),
            cfg.ListOpt("allowed_hosts", item_type=types.HostAddress(), bounds=True),
            cfg.ListOpt("disallowed_hosts", item_type=types.HostAddress(), bounds=True),
            cfg.ListOpt("allowed_ports", item_type=ports, bounds=True),
            cfg.ListOpt("disallowed_ports", item_type=ports, bounds=True),
        ],
        group="import_filtering_opts",
    )
    conf.register_opts(
        [cfg.ListOpt("service_token_roles"), cfg.ListOpt("memcached_servers")],
        group="keystone_authtoken",
    )
    conf(["--config-file", str(path)], project="glimpse-test", default_config_files=[])
    return conf


def test_glance_notation_loads_as_oslo_config_loads_it(tmp_path: Path) -> None:
    path = write(tmp_path, GLANCE_NOTATION)
    settings = load_settings(path)
    oslo = oslo_values(path)
    try:
        assert settings.enabled_import_methods == ["glance-direct", "web-download"]
        assert settings.enabled_import_methods == oslo.enabled_import_methods
        assert settings.enabled_backends == {"fast": "file", "shared": "file", "web": "http"}
        assert settings.enabled_backends == oslo.enabled_backends
        assert settings.store_options("fast").store_description == "Fast file store"
        assert settings.store_options("fast").store_description == oslo.fast.store_description
        assert settings.store_options("shared").store_description == "Shared filesystem store"
        assert settings.store_options("shared").store_description == (oslo.shared.store_description)
        assert settings.store_options("web").http_proxy_information == {
            "http": "127.0.0.1:3128",
            "https": "127.0.0.1:1080",
        }
        assert settings.store_options("web").http_proxy_information == (
            oslo.web.http_proxy_information
        )
        plugins = settings.image_import_opts.image_import_plugins
        assert plugins == ["inject_image_metadata", "image_conversion"]
        assert plugins == oslo.image_import_opts.image_import_plugins
        inject = settings.inject_metadata_properties
        assert inject.ignore_user_roles == ["admin", "reader"]
        assert inject.ignore_user_roles == oslo.inject_metadata_properties.ignore_user_roles
        assert inject.inject == {"property1": "value1", "property2": "value:with:colons"}
        assert inject.inject == oslo.inject_metadata_properties.inject
        filtering = settings.import_filtering_opts
        expected: dict[str, Any] = {
            "allowed_schemes": ["http", "https"],
            "disallowed_schemes": [],
            "allowed_hosts": ["127.0.0.1"],
            "disallowed_hosts": [],
            "allowed_ports": [],
            "disallowed_ports": [22, 25],
        }
        for name, value in expected.items():
            assert getattr(filtering, name) == value, name
            assert getattr(filtering, name) == getattr(oslo.import_filtering_opts, name), name
        assert settings.image_format.gpt_safety_checks_nonfatal == ["mbr"]
        keystone = settings.keystone_authtoken
        assert keystone.service_token_roles == oslo.keystone_authtoken.service_token_roles
        assert keystone.memcached_servers == ["cache1:11211", "cache2:11211"]
        assert keystone.memcached_servers == oslo.keystone_authtoken.memcached_servers
    finally:
        oslo.reset()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", []),
        ("", []),
        ("[127.0.0.1]", ["127.0.0.1"]),
        ("['glance-direct', 'web-download']", ["glance-direct", "web-download"]),
        ("[a, b]", ["a", "b"]),
        ("a, b", ["a", "b"]),
        ("a,b,", ["a", "b"]),
        ('["a, b", c]', ["a, b", "c"]),  # a quoted item keeps its commas
        ("[80, 443]", ["80", "443"]),
    ],
)
def test_list_notation(value: str, expected: list[str]) -> None:
    assert parse_list(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [("[a, b", 'end with "]"'), ("'unclosed, b", "Non-closed quote")],
)
def test_list_notation_errors(value: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_list(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("a:1, b:2", {"a": "1", "b": "2"}),
        ("http:10.0.0.1:3128", {"http": "10.0.0.1:3128"}),
        ('a:"quoted"', {"a": '"quoted"'}),  # a DictOpt keeps its values' quotes
    ],
)
def test_dict_notation(value: str, expected: dict[str, str]) -> None:
    assert parse_dict(value) == expected


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[DEFAULT]\nenabled_backends = a:file, a:file\n", "Duplicate key a"),
        ("[DEFAULT]\nenabled_backends = :file\n", "Key name should not be empty"),
        ("[import_filtering_opts]\nallowed_ports = [80, http]\n", "allowed_ports"),
        ("[import_filtering_opts]\nallowed_ports = [80, 443\n", 'end with "]"'),
        ("[DEFAULT]\nenabled_import_methods = [glance-direct, teleport]\n", "teleport"),
    ],
)
def test_bad_notation_names_the_option_and_the_file(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert where in str(caught.value)
    assert str(path) in str(caught.value)


def test_environment_takes_the_same_notation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIMPSE_IMPORT_FILTERING_OPTS__ALLOWED_PORTS", "[8080, 8443]")
    monkeypatch.setenv("GLIMPSE_ENABLED_IMPORT_METHODS", "['web-download']")
    settings = load_settings()
    assert settings.import_filtering_opts.allowed_ports == [8080, 8443]
    assert settings.enabled_import_methods == ["web-download"]


# -- Glance's single-store options (before enabled_backends) -----------------------------------

LEGACY = """\
[glance_store]
stores = {stores}
default_store = {default}
filesystem_store_datadir = {tmp}/images
"""


def test_legacy_file_store_is_honoured(tmp_path: Path) -> None:
    # The sample's own defaults: `stores = file,http`, `default_store = file`.
    path = write(tmp_path, LEGACY.format(stores="file,http", default="file", tmp=tmp_path))
    settings = load_settings(path)
    assert settings.glance_store.stores == ["file", "http"]
    assert settings.default_store == "file"
    assert settings.store_datadir("file") == tmp_path / "images"


@pytest.mark.parametrize("kind", ["rbd", "swift", "cinder", "vsphere", "s3"])
def test_legacy_default_store_glimpse_cannot_honour_stops(tmp_path: Path, kind: str) -> None:
    text = LEGACY.format(stores=f"file,http,{kind}", default=kind, tmp=tmp_path)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert f"[glance_store] default_store = {kind} cannot be honoured" in message
    assert str(path) in message
    assert "enabled_backends" in message


@pytest.mark.parametrize("kind", ["rbd", "glance.store.swift.Store", "cinder", "vmware"])
def test_legacy_stores_glimpse_cannot_honour_stop(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, LEGACY.format(stores=f"file, {kind}", default="file", tmp=tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"[glance_store] stores names {kind}" in str(caught.value)
    assert str(path) in str(caught.value)


def test_legacy_options_are_ignored_with_enabled_backends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        "[DEFAULT]\nenabled_backends = fast:file\n[fast]\n"
        f"filesystem_store_datadir = {tmp_path}/fast\n"
        "[glance_store]\nstores = rbd\ndefault_store = rbd\n"
    )
    with caplog.at_level(logging.WARNING):
        settings = load_settings(write(tmp_path, text))
    assert settings.default_store == "fast"
    assert any(
        "[glance_store] default_store and stores ignored" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("program", ["glimpse_api.main", "glimpse_scrubber.cli"])
def test_start_up_stops_on_a_store_it_cannot_honour(tmp_path: Path, program: str) -> None:
    path = write(tmp_path, LEGACY.format(stores="file,http,rbd", default="rbd", tmp=tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", program, "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "[glance_store] default_store = rbd cannot be honoured" in result.stderr
    assert str(path) in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was written to a local directory
