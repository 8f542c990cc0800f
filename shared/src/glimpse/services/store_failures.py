"""What a failed store write means to the caller: the domain error the API's table maps."""

from __future__ import annotations

from glimpse.domain.errors import GlimpseError, LimitExceeded, StoreUnavailable
from glimpse.stores.base import StoreError, StoreFull


def write_failure(store_name: str, exc: BaseException) -> GlimpseError | None:
    """A full store is 413 (as Glance's StorageFull), any other store or I/O failure 503 (as
    its StorageWriteDenied); None for errors that are not the store's (the client's, limits)."""
    if isinstance(exc, StoreFull):
        return LimitExceeded(f"Image storage media is full: {exc}")
    if isinstance(exc, StoreError):
        return StoreUnavailable(f"Store {store_name} failed: {exc}")
    if isinstance(exc, OSError):
        # strerror only: the exception's text names paths of the server.
        return StoreUnavailable(f"Store {store_name} failed: {exc.strerror or type(exc).__name__}")
    return None
