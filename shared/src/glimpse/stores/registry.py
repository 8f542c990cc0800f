"""Builds the enabled stores from settings; drivers come from `glimpse.stores` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol

from glimpse.config import Settings
from glimpse.stores.base import StoreDriver, StoreError
from glimpse.stores.checked import CheckedStore

ENTRY_POINT_GROUP = "glimpse.stores"


class DriverFactory(Protocol):
    def from_settings(self, store_id: str, settings: Settings) -> StoreDriver: ...


def driver_types() -> dict[str, DriverFactory]:
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


class StoreRegistry:
    """The enabled stores by id, each wrapped in CheckedStore."""

    def __init__(self, stores: dict[str, CheckedStore], default: str) -> None:
        self._stores = stores
        self.default_id = default

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreRegistry:
        factories = driver_types()
        stores = {}
        for store_id, store_type in settings.enabled_backends.items():
            factory = factories.get(store_type)
            if factory is None:
                msg = f"no driver for store type {store_type!r}"
                raise StoreError(msg)
            stores[store_id] = CheckedStore(factory.from_settings(store_id, settings))
        return cls(stores, settings.default_store)

    @property
    def default(self) -> CheckedStore:
        return self._stores[self.default_id]

    def get(self, store_id: str) -> CheckedStore | None:
        return self._stores.get(store_id)

    def ids(self) -> list[str]:
        return list(self._stores)

    async def aclose(self) -> None:
        for store in self._stores.values():
            await store.aclose()
