"""The registry builds every enabled store, of each type, from a glance-api.conf style file."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.stores.base import Capability
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import FilesystemStore
from glimpse.stores.http import HttpStore
from glimpse.stores.registry import StoreRegistry, driver_types
from glimpse.stores.s3 import S3Store

CONFIG = """\
[DEFAULT]
enabled_backends = fast:file, cold:s3, web:http

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {datadir}

[cold]
s3_store_host = 127.0.0.1:9000
s3_store_access_key = access
s3_store_secret_key = secret
s3_store_bucket = images
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_large_object_size = 50
s3_store_large_object_chunk_size = 8
s3_store_thread_pools = 4

[web]
https_insecure = false
http_proxy_information = http:10.0.0.1:3128, https:10.0.0.1:1080
"""


def test_driver_types_include_s3_and_http() -> None:
    assert {"file", "s3", "http"} <= set(driver_types())


async def test_registry_builds_file_s3_and_http_stores(tmp_path: Path) -> None:
    config = tmp_path / "glance-api.conf"
    config.write_text(CONFIG.format(datadir=tmp_path / "fast"))
    registry = StoreRegistry.from_settings(load_settings(config))
    try:
        assert registry.ids() == ["fast", "cold", "web"]
        assert registry.default.name == "fast"
        stores = {store_id: registry.get(store_id) for store_id in registry.ids()}
        assert all(isinstance(store, CheckedStore) for store in stores.values())
        fast, cold, web = (store.driver for store in stores.values() if store is not None)
        assert isinstance(fast, FilesystemStore)
        assert fast.datadir == (tmp_path / "fast").resolve()
        assert isinstance(cold, S3Store)
        assert cold.config.endpoint_url == "http://127.0.0.1:9000"
        assert cold.config.bucket == "images"
        assert cold.config.create_bucket is True
        assert cold.config.addressing_style == "path"
        assert cold.config.large_object_size == 50 * 1024 * 1024
        assert cold.config.part_size == 8 * 1024 * 1024
        assert cold.config.parts_in_flight == 4
        assert cold.location_for("x") == "s3://127.0.0.1:9000/images/x"
        assert isinstance(web, HttpStore)
        assert web.capabilities == Capability.READ | Capability.RANGE_READ
    finally:
        await registry.aclose()


def test_unknown_bucket_url_format_names_the_option(tmp_path: Path) -> None:
    config = tmp_path / "glance-api.conf"
    config.write_text(
        CONFIG.format(datadir=tmp_path).replace("url_format = path", "url_format = sideways")
    )
    with pytest.raises(ConfigError, match=r"\[cold\] s3_store_bucket_url_format"):
        load_settings(config)


def test_registry_builds_enabled_stores(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        enabled_backends="fast:file, cheap:file",
        glance_store={"default_backend": "cheap"},
        stores={"fast": {"filesystem_store_datadir": str(tmp_path / "f")}},
    )
    registry = StoreRegistry.from_settings(settings)
    assert registry.ids() == ["fast", "cheap"]
    assert registry.default.name == "cheap"
    assert registry.get("fast") is not None
    assert registry.get("nope") is None
