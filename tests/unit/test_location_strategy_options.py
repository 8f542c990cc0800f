"""location_strategy and store_type_preference: parsing, refusals, and the read order."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.stores.registry import StoreRegistry


@dataclass
class Loc:
    store_id: str | None
    value: str


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return path


def reserved_sections(tmp_path: Path) -> str:
    return (
        f"[os_glance_staging_store]\nfilesystem_store_datadir = {tmp_path / 'staging'}\n\n"
        f"[os_glance_tasks_store]\nfilesystem_store_datadir = {tmp_path / 'tasks'}\n"
    )


def test_store_type_strategy_as_glance_docs_write_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[DEFAULT]\n"
        "location_strategy = store_type\n\n"
        "[store_type_location_strategy]\n"
        "store_type_preference = rbd, s3, file, http\n",
    )
    settings = load_settings(path)
    assert settings.location_strategy == "store_type"
    assert settings.store_type_location_strategy.store_type_preference == [
        "rbd",
        "s3",
        "file",
        "http",
    ]


def test_defaults_keep_the_location_order() -> None:
    settings = load_settings(None)
    assert settings.location_strategy == "location_order"
    assert settings.store_type_location_strategy.store_type_preference == []


@pytest.mark.parametrize(("old", "new"), [("filesystem", "file"), ("vmware_datastore", "vmware")])
def test_names_removed_in_pike_stop_start_up_naming_the_right_one(
    tmp_path: Path, old: str, new: str
) -> None:
    path = write(
        tmp_path,
        "[DEFAULT]\nlocation_strategy = store_type\n\n"
        f"[store_type_location_strategy]\nstore_type_preference = http, {old}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "[store_type_location_strategy] store_type_preference" in message
    assert f"{old!r} is no longer recognised" in message
    assert f"use {new!r}" in message
    assert str(path) in message


def test_unknown_store_type_and_strategy_stop_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, "[store_type_location_strategy]\nstore_type_preference = file, tape\n")
    with pytest.raises(ConfigError, match="unknown store type 'tape'"):
        load_settings(path)
    path = write(tmp_path, "[DEFAULT]\nlocation_strategy = fastest\n")
    with pytest.raises(ConfigError, match=r"\[DEFAULT\] location_strategy"):
        load_settings(path)


def test_api_refuses_to_start_on_a_removed_store_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[DEFAULT]\nlocation_strategy = store_type\n\n"
        "[store_type_location_strategy]\nstore_type_preference = filesystem\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "glimpse_api.main", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "use 'file'" in result.stderr


def registry(tmp_path: Path, strategy: str, preference: str) -> StoreRegistry:
    """Three stores of three types (s3 is configured, never reached: ordering reads none)."""
    path = write(
        tmp_path,
        "[DEFAULT]\n"
        "enabled_backends = local:file, objects:s3, web:http\n"
        f"location_strategy = {strategy}\n\n"
        "[store_type_location_strategy]\n"
        f"store_type_preference = {preference}\n\n"
        "[glance_store]\ndefault_backend = local\n\n"
        f"[local]\nfilesystem_store_datadir = {tmp_path / 'local'}\nweight = 10\n\n"
        "[objects]\ns3_store_host = http://127.0.0.1:9\ns3_store_access_key = a\n"
        "s3_store_secret_key = s\ns3_store_bucket = images\nweight = 50\n\n"
        "[web]\n\n" + reserved_sections(tmp_path),
    )
    return StoreRegistry.from_settings(load_settings(path))


LOCATIONS = [
    Loc("local", "file:///srv/local/1"),
    Loc("web", "http://mirror.example/1"),
    Loc("objects", "s3://127.0.0.1:9/images/1"),
]


def order(stores: StoreRegistry, locations: list[Loc], prefer: tuple[str, ...] = ()) -> list[str]:
    return [loc.store_id or loc.value for loc in stores.by_weight(locations, prefer)]


def test_location_order_reads_by_weight_then_as_added(tmp_path: Path) -> None:
    stores = registry(tmp_path, "location_order", "http, file")
    # The preference is unused under location_order.
    assert order(stores, LOCATIONS) == ["objects", "local", "web"]


def test_store_type_reads_the_preferred_types_first(tmp_path: Path) -> None:
    stores = registry(tmp_path, "store_type", "http, file")
    assert order(stores, LOCATIONS) == ["web", "local", "objects"]
    stores = registry(tmp_path, "store_type", "file")
    # Unlisted types follow by weight.
    assert order(stores, LOCATIONS) == ["local", "objects", "web"]
    # A ?prefer= store still comes first.
    assert order(stores, LOCATIONS, ("web",)) == ["web", "local", "objects"]


def test_store_type_of_a_location_without_store_is_its_schemes(tmp_path: Path) -> None:
    stores = registry(tmp_path, "store_type", "s3, http")
    legacy = [
        Loc(None, "file:///var/lib/glance/images/1"),
        Loc(None, "swift+https://swift.example/v1/glance/1"),
        Loc(None, "https://mirror.example/1"),
        Loc(None, "s3+https://s3.example/images/1"),
    ]
    assert order(stores, legacy) == [
        "s3+https://s3.example/images/1",
        "https://mirror.example/1",
        "file:///var/lib/glance/images/1",
        "swift+https://swift.example/v1/glance/1",
    ]
