"""Builds the enabled stores from settings; drivers come from `glimpse.stores` entry points.

A driver's module is imported only when a store of its type is built: the s3 driver alone
brings in botocore (tens of MiB in every process), which a deployment without s3 never needs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, TypeVar

from glimpse.config import Settings
from glimpse.config.location_strategy import scheme_store_type, type_preference
from glimpse.config.reserved import RESERVED_STORES, STAGING_STORE, TASKS_STORE
from glimpse.stores.base import StoreDriver, StoreError
from glimpse.stores.checked import CheckedStore

ENTRY_POINT_GROUP = "glimpse.stores"


class DriverFactory(Protocol):
    def from_settings(self, store_id: str, settings: Settings) -> StoreDriver: ...


class HasStore(Protocol):
    @property
    def store_id(self) -> str | None: ...

    @property
    def value(self) -> str: ...


Located = TypeVar("Located", bound=HasStore)


@functools.cache
def driver_types() -> Mapping[str, EntryPoint]:
    """The installed drivers by store type, not loaded yet. Read once per process: finding
    them reads every installed distribution's metadata, and a worker's pool processes then
    reuse what their parent found rather than each reading it again."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_drivers(settings: Settings) -> dict[str, DriverFactory]:
    """The installed drivers of the store types `settings` use (user and reserved stores),
    loaded. A process that forks workers calls it before the fork, so they share the modules."""
    installed = driver_types()
    used = {*settings.enabled_backends.values()}
    used.update(settings.reserved_store_type(store_id) for store_id in RESERVED_STORES)
    return {kind: installed[kind].load() for kind in sorted(used) if kind in installed}


class StoreRegistry:
    """The enabled stores by id, each wrapped in CheckedStore, plus the reserved stores
    (staging and tasks), which are never offered to users."""

    def __init__(
        self,
        stores: dict[str, CheckedStore],
        default: str,
        *,
        types: dict[str, str] | None = None,
        weights: dict[str, int] | None = None,
        descriptions: dict[str, str] | None = None,
        reserved: dict[str, CheckedStore] | None = None,
        type_preference: Sequence[str] = (),
    ) -> None:
        self._stores = stores
        self.default_id = default
        self.types = types or {}
        self.weights = weights or {}
        self.descriptions = descriptions or {}
        self._reserved = reserved or {}
        self.type_preference = tuple(type_preference)

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreRegistry:
        factories = load_drivers(settings)

        def build(store_id: str, store_type: str) -> CheckedStore:
            factory = factories.get(store_type)
            if factory is None:
                msg = f"no driver for store type {store_type!r}"
                raise StoreError(msg)
            return CheckedStore(factory.from_settings(store_id, settings))

        stores = {sid: build(sid, kind) for sid, kind in settings.enabled_backends.items()}
        reserved = {sid: build(sid, settings.reserved_store_type(sid)) for sid in RESERVED_STORES}
        return cls(
            stores,
            settings.default_store,
            types=dict(settings.enabled_backends),
            weights={sid: settings.store_options(sid).weight for sid in stores},
            descriptions={sid: settings.store_options(sid).store_description for sid in stores},
            reserved=reserved,
            type_preference=type_preference(
                settings.location_strategy, settings.store_type_location_strategy
            ),
        )

    @property
    def default(self) -> CheckedStore:
        return self._stores[self.default_id]

    @property
    def staging(self) -> CheckedStore:
        return self._reserved[STAGING_STORE]

    @property
    def tasks(self) -> CheckedStore:
        return self._reserved[TASKS_STORE]

    @property
    def work(self) -> CheckedStore:
        """Where an import keeps the data it works on, as files on this host (the plugins
        rewrite them in place): the staging store when it keeps its files here, else (an s3
        staging store) the tasks store."""
        staging = self.staging
        return staging if staging.keeps_local_files else self.tasks

    def get(self, store_id: str) -> CheckedStore | None:
        return self._stores.get(store_id)

    def ids(self) -> list[str]:
        return list(self._stores)

    def store_type(self, item: HasStore) -> str | None:
        """The type of the store holding `item`: its store's, or its URL scheme's when it
        names no enabled store (single-store locations name none)."""
        if item.store_id is not None and item.store_id in self.types:
            return self.types[item.store_id]
        return scheme_store_type(item.value)

    def by_weight(self, items: Iterable[Located], prefer: Sequence[str] = ()) -> list[Located]:
        """`items` in read order: stores named in `prefer` first (in that order), then the
        store types of store_type_preference (location_strategy = store_type), then by
        descending store weight; the sort is stable, so the rest keep their order."""
        types = self.type_preference

        def key(item: Located) -> tuple[int, int, int]:
            store_id = item.store_id or self.default_id
            rank = prefer.index(store_id) if store_id in prefer else len(prefer)
            kind = self.store_type(item) if types else None
            type_rank = types.index(kind) if kind is not None and kind in types else len(types)
            return rank, type_rank, -self.weights.get(store_id, 0)

        return sorted(items, key=key)

    async def aclose(self) -> None:
        for store in (*self._stores.values(), *self._reserved.values()):
            await store.aclose()
