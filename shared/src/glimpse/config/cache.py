"""The image cache's options, with Glance's names: `[DEFAULT] image_cache_*`,
`cache_prefetcher_interval`, `worker_self_reference_url` and `[paste_deploy] flavor`.

DefaultOptions (and so Settings) inherits CacheOptions, so the `[DEFAULT]` options stay
top-level fields while this module keeps them together.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

log = logging.getLogger(__name__)

GiB = 1024**3
# The paste pipelines of glance-api-paste.ini that put the cache filter in front of the API.
_CACHING_FLAVORS = frozenset({"caching", "cachemanagement"})


class PasteDeployOptions(BaseModel):
    flavor: str | None = Field(
        None,
        description=(
            "Glance's paste pipeline: keystone selects Keystone auth (unless auth_strategy is "
            "set); +caching or +cachemanagement (e.g. keystone+cachemanagement) serves downloads "
            "through the image cache (when image_cache_dir is set)."
        ),
    )

    @property
    def caching(self) -> bool:
        parts = (self.flavor or "").strip().lower().split("+")
        return bool(_CACHING_FLAVORS.intersection(parts))


class CacheOptions(BaseModel):
    """`[DEFAULT]` options of the image cache (a base of Settings)."""

    image_cache_dir: Path | None = Field(
        None,
        description=(
            "Directory of this node's image cache. Set, it enables the cache API (/v2/cache, "
            "API 2.14-2.18) and the prefetcher; downloads go through the cache when "
            "[paste_deploy] flavor also has caching or cachemanagement."
        ),
    )
    image_cache_max_size: int = Field(
        10 * GiB,
        ge=0,
        description=(
            "Bytes this node's cache may hold before pruning removes the least recently used "
            "images (a soft limit: a fill may pass it until the next prune)."
        ),
    )
    image_cache_stall_time: int = Field(
        86400,
        ge=0,
        description="Seconds after which an unfinished cache file counts as stalled and is "
        "removed by cleaning.",
    )
    image_cache_driver: Literal["centralized_db", "sqlite", "xattr"] = Field(
        "centralized_db",
        description=(
            "Where cache state is kept. Glimpse has centralized_db only (state in the database, "
            "files per node); sqlite and xattr are read as centralized_db, with a warning."
        ),
    )
    cache_prefetcher_interval: int = Field(
        300,
        ge=1,
        description=(
            "Seconds between passes of the prefetcher inside the API, which fills images queued "
            "with PUT /v2/cache/{image_id}, and of the cache's pruning and cleaning. With a "
            "Redis or RabbitMQ broker, images deleted or deactivated on one node leave every "
            "node's cache at once; the pass catches up with notices that were lost."
        ),
    )
    worker_self_reference_url: str | None = Field(
        None,
        description=(
            "URL by which other nodes reach this API node; it names the node in the cache "
            "tables and GET /v2/cache/nodes/{image_id}. Default http://<host name>:<bind_port>."
        ),
    )

    @field_validator("image_cache_driver")
    @classmethod
    def _driver(cls, value: str) -> str:
        if value != "centralized_db":
            log.warning("image_cache_driver = %s is served as centralized_db", value)
        return "centralized_db"

    @property
    def cache_enabled(self) -> bool:
        """The cache API and prefetcher run (Glance: image_cache_dir is set)."""
        return self.image_cache_dir is not None

    def node_url(self, bind_port: int) -> str:
        """This node's name in the cache tables."""
        if self.worker_self_reference_url:
            return self.worker_self_reference_url.rstrip("/")
        return f"http://{socket.gethostname()}:{bind_port}"
