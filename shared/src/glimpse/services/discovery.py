"""What the service offers: its stores (2.8, 2.15) and a project's usage (2.13)."""

from __future__ import annotations

from typing import Any

from glimpse import unified_limits
from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.limit_usage import LimitUsageRepository
from glimpse.db.tables import utcnow
from glimpse.domain import policy
from glimpse.domain.errors import NotFound
from glimpse.stores.filesystem import READ_CHUNK
from glimpse.stores.registry import StoreRegistry

MiB = 1024 * 1024
UNLIMITED = -1

# Per store type, the options shown by /v2/info/stores/detail: sizes and layout, never
# credentials or endpoints.
_DETAIL_OPTIONS: dict[str, tuple[str, ...]] = {
    "s3": (
        "s3_store_large_object_size",
        "s3_store_large_object_chunk_size",
        "s3_store_thread_pools",
    ),
    "http": (),
}


class DiscoveryService:
    def __init__(self, settings: Settings, database: Database, stores: StoreRegistry) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores

    def list_stores(self) -> list[dict[str, Any]]:
        """The user-facing stores; 404 unless multi-store is configured, as in Glance."""
        if not self.settings.multistore:
            raise NotFound("Multi backend is not supported at this site.")
        listed = []
        for store_id in self.stores.ids():
            entry: dict[str, Any] = {"id": store_id}
            description = self.stores.descriptions.get(store_id)
            if description:
                entry["description"] = description
            if store_id == self.stores.default_id:
                entry["default"] = "true"
            if self.stores.types.get(store_id) == "http":
                entry["read-only"] = "true"
            listed.append(entry)
        return listed

    def list_stores_detail(self, ctx: RequestContext) -> list[dict[str, Any]]:
        stores = self.list_stores()
        policy.enforce(ctx, "stores_info_detail")
        for entry in stores:
            store_type = self.stores.types[entry["id"]]
            entry["type"] = store_type
            entry["properties"] = self._properties(entry["id"], store_type)
            entry["weight"] = self.stores.weights.get(entry["id"], 0)
        return stores

    def _properties(self, store_id: str, store_type: str) -> dict[str, Any]:
        if store_type == "file":
            return {
                "data_dir": str(self.settings.store_datadir(store_id)),
                "chunk_size": READ_CHUNK,
                "thin_provisioning": False,
            }
        options = self.settings.store_options(store_id)
        return {name: getattr(options, name, None) for name in _DETAIL_OPTIONS.get(store_type, ())}

    async def usage(self, ctx: RequestContext) -> dict[str, dict[str, int]]:
        """The caller's project usage against its limits (-1: unlimited), in Glance's
        unified-limit names; sizes in MiB. With use_keystone_limits the limits are
        Keystone's and the usage is what they are enforced on."""
        limits = await unified_limits.read_limits(self.settings, ctx.project_id)
        if limits is not None:
            async with self.db.read() as session:
                counted = await LimitUsageRepository(session).usage(ctx.project_id, utcnow())
            usage = unified_limits.in_units(counted)
            return {
                name: {"usage": usage[name], "limit": limits[name]}
                for name in unified_limits.RESOURCES
            }
        async with self.db.read() as session:
            used = await ImageRepository(session).usage(ctx.project_id)
        quota = self.settings.user_storage_quota
        return {
            "image_size_total": {
                "usage": used.image_bytes // MiB,
                "limit": quota // MiB if quota > 0 else UNLIMITED,
            },
            "image_stage_total": {"usage": used.staged_bytes // MiB, "limit": UNLIMITED},
            "image_count_total": {"usage": used.image_count, "limit": UNLIMITED},
            "image_count_uploading": {"usage": used.uploading_count, "limit": UNLIMITED},
        }
