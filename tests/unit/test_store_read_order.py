"""The store registry: reserved stores and the read order of locations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glimpse.config import load_settings
from glimpse.stores.filesystem import FilesystemStore
from glimpse.stores.registry import StoreRegistry


@dataclass
class Loc:
    store_id: str | None
    name: str
    value: str = "file:///var/lib/glance/images/x"


def registry(tmp_path: Path) -> StoreRegistry:
    settings = load_settings(
        None,
        enabled_backends="light:file, heavy:file, plain:file",
        glance_store={"default_backend": "plain"},
        stores={
            "light": {"filesystem_store_datadir": str(tmp_path / "l"), "weight": 1},
            "heavy": {"filesystem_store_datadir": str(tmp_path / "h"), "weight": 50},
            "plain": {"filesystem_store_datadir": str(tmp_path / "p")},
            "os_glance_staging_store": {"filesystem_store_datadir": str(tmp_path / "s")},
            "os_glance_tasks_store": {"filesystem_store_datadir": str(tmp_path / "t")},
        },
    )
    return StoreRegistry.from_settings(settings)


def test_reserved_stores_are_built_but_not_offered(tmp_path: Path) -> None:
    stores = registry(tmp_path)
    assert stores.ids() == ["light", "heavy", "plain"]
    assert stores.get("os_glance_staging_store") is None
    staging, tasks = stores.staging.driver, stores.tasks.driver
    assert isinstance(staging, FilesystemStore)
    assert isinstance(tasks, FilesystemStore)
    assert staging.datadir == (tmp_path / "s").resolve()
    assert tasks.datadir == (tmp_path / "t").resolve()


def test_locations_read_by_weight_then_preference(tmp_path: Path) -> None:
    stores = registry(tmp_path)
    locations = [Loc("light", "1"), Loc(None, "2"), Loc("heavy", "3"), Loc("plain", "4")]
    order = [loc.name for loc in stores.by_weight(locations)]
    # None means the default store (weight 0); equal weights keep their order.
    assert order == ["3", "1", "2", "4"]
    preferred = [loc.name for loc in stores.by_weight(locations, ["plain", "light"])]
    assert preferred == ["2", "4", "1", "3"]
