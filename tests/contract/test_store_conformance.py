"""One conformance suite for every store driver (today: file)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from glimpse.config import load_settings
from glimpse.stores.base import (
    Capability,
    CapabilityMissing,
    ObjectNotFound,
    ResolvedRange,
    StoreDriver,
    StoreError,
)
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import FilesystemStore
from glimpse.stores.registry import StoreRegistry

DriverFactory = Callable[[Path], StoreDriver]
DRIVERS: dict[str, DriverFactory] = {"file": lambda root: FilesystemStore("file", root / "store")}


@pytest.fixture(params=sorted(DRIVERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> CheckedStore:
    return CheckedStore(DRIVERS[request.param](tmp_path))


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def leftovers(store: CheckedStore) -> list[str]:
    root = getattr(store.driver, "datadir", None)
    return sorted(p.name for p in root.iterdir()) if root is not None and root.exists() else []


async def test_write_read_delete(store: CheckedStore) -> None:
    data = os.urandom(300_000)
    stored = await store.put("image-1", chunks_of(data))
    assert stored.size == len(data)
    assert await store.size(stored.location) == len(data)
    assert await read_all(store.get(stored.location)) == data
    await store.delete(stored.location)
    with pytest.raises(ObjectNotFound):
        await store.size(stored.location)
    with pytest.raises(ObjectNotFound):
        await read_all(store.get(stored.location))
    with pytest.raises(ObjectNotFound):
        await store.delete(stored.location)
    assert await store.delete_if_present(stored.location) is False


async def test_ranges(store: CheckedStore) -> None:
    data = bytes(range(256)) * 10_000
    stored = await store.put("ranged", chunks_of(data))
    for start, stop in ((0, 1), (1000, 2_000_000), (len(data) - 5, len(data))):
        span = ResolvedRange(start, stop)
        assert await read_all(store.get(stored.location, span)) == data[start:stop]


async def test_failed_write_leaves_nothing(store: CheckedStore) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await store.put("broken", failing())
    assert leftovers(store) == []


async def test_cancelled_write_leaves_nothing(store: CheckedStore) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            yield b"y" * 65536
            await asyncio.sleep(0.01)

    task = asyncio.create_task(store.put("cancelled", endless()))
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(store) == []


async def test_concurrent_writers(store: CheckedStore) -> None:
    blobs = {f"img-{i}": os.urandom(200_000 + i) for i in range(6)}
    stored = await asyncio.gather(*(store.put(k, chunks_of(v)) for k, v in blobs.items()))
    for (key, data), result in zip(blobs.items(), stored, strict=True):
        assert result.size == len(data), key
        assert await read_all(store.get(result.location)) == data


async def test_large_object_streams_in_bounded_chunks(store: CheckedStore) -> None:
    total = 64 * 1024 * 1024
    block = os.urandom(1024 * 1024)

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(total // len(block)):
            yield block

    stored = await store.put("large", generated())
    assert stored.size == total
    digest = hashlib.sha256()
    largest = 0
    async for chunk in store.get(stored.location):
        largest = max(largest, len(chunk))
        digest.update(chunk)
    expected = hashlib.sha256()
    for _ in range(total // len(block)):
        expected.update(block)
    assert digest.hexdigest() == expected.hexdigest()
    assert largest <= 1024 * 1024


async def test_file_store_refuses_paths_outside_its_directory(tmp_path: Path) -> None:
    store = CheckedStore(FilesystemStore("file", tmp_path / "store"))
    outside = tmp_path / "secret"
    outside.write_bytes(b"s")
    with pytest.raises(StoreError):
        await read_all(store.get(outside.as_uri()))
    with pytest.raises(StoreError):
        await store.delete("file:///etc/passwd")
    with pytest.raises(StoreError):
        await store.put("../escape", chunks_of(b"x"))
    with pytest.raises(StoreError):
        await read_all(store.get("http://example.com/x"))


async def test_capabilities_are_checked(tmp_path: Path) -> None:
    driver = FilesystemStore("ro", tmp_path)
    driver.capabilities = Capability.READ  # type: ignore[misc]
    store = CheckedStore(driver)
    with pytest.raises(CapabilityMissing):
        await store.put("x", chunks_of(b"x"))
    with pytest.raises(CapabilityMissing):
        store.get("file:///x", ResolvedRange(0, 1))
    with pytest.raises(CapabilityMissing):
        await store.delete("file:///x")


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
