"""Ids of the stores Glimpse keeps for itself (Train's reserved stores)."""

from typing import Final

STAGING_STORE: Final = "os_glance_staging_store"
TASKS_STORE: Final = "os_glance_tasks_store"
RESERVED_STORES: Final = (STAGING_STORE, TASKS_STORE)
RESERVED_PREFIX: Final = "os_glance_"
