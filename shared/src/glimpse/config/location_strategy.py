"""Glance's location strategy: `[DEFAULT] location_strategy` and
`[store_type_location_strategy] store_type_preference` decide the order in which an image's
locations are read (a download falls back to the next one) and shown (`locations`,
`direct_url`).

A location's store type is its store's type (enabled_backends) or, for a location without a
store, the type its URL's scheme belongs to, as in Glance.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from glimpse.config.notation import GlanceList

log = logging.getLogger(__name__)

LocationStrategy = Literal["location_order", "store_type"]

# Glance's store types and the URL schemes of their locations.
STORE_TYPE_SCHEMES: Final[dict[str, tuple[str, ...]]] = {
    "file": ("file",),
    "http": ("http", "https"),
    "s3": ("s3", "s3+http", "s3+https"),
    "swift": ("swift", "swift+http", "swift+https", "swift+config"),
    "rbd": ("rbd",),
    "cinder": ("cinder",),
    "vmware": ("vsphere",),
}
# Newton deprecated these names and Pike stopped recognising them.
RENAMED_STORE_TYPES: Final = {"filesystem": "file", "vmware_datastore": "vmware"}


def known_store_types() -> list[str]:
    """Glance's store types plus any this installation has a driver for."""
    installed = {ep.name for ep in entry_points(group="glimpse.stores")}
    return sorted(set(STORE_TYPE_SCHEMES) | installed)


def scheme_store_type(url: str) -> str | None:
    """The store type a location URL's scheme belongs to (None: no known type)."""
    scheme = urlsplit(url.strip()).scheme.lower()
    for store_type, schemes in STORE_TYPE_SCHEMES.items():
        if scheme in schemes:
            return store_type
    return None


class StoreTypeLocationStrategyOptions(BaseModel):
    """`[store_type_location_strategy]`, read with `location_strategy = store_type`."""

    store_type_preference: GlanceList[str] = Field(
        default_factory=list,
        description=(
            "Store types in the order their locations are read and shown, e.g. "
            "`s3, file, http` (types: file, http, s3, swift, rbd, cinder, vmware). Locations "
            "of other types follow in their usual order. Only with location_strategy = "
            "store_type; an empty list changes nothing."
        ),
    )

    @field_validator("store_type_preference")
    @classmethod
    def _store_types(cls, value: list[str]) -> list[str]:
        names: list[str] = []
        for raw in value:
            name = raw.strip()
            if not name or name in names:
                continue
            if name in RENAMED_STORE_TYPES:
                msg = (
                    f"{name!r} is no longer recognised (deprecated in Newton, removed in "
                    f"Pike): use {RENAMED_STORE_TYPES[name]!r}"
                )
                raise ValueError(msg)
            known = known_store_types()
            if name not in known:
                msg = f"unknown store type {name!r} (known: {', '.join(known)})"
                raise ValueError(msg)
            names.append(name)
        return names


def type_preference(
    strategy: LocationStrategy, options: StoreTypeLocationStrategyOptions
) -> tuple[str, ...]:
    """The store types read first, in order; empty under location_order (a preference set
    there is unused, as in Glance, and said so once at start-up)."""
    if strategy == "store_type":
        return tuple(options.store_type_preference)
    if options.store_type_preference:
        log.warning(
            "[store_type_location_strategy] store_type_preference is unused: "
            "[DEFAULT] location_strategy is location_order"
        )
    return ()
