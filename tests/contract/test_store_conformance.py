"""One conformance suite for every store driver: file, s3 (against moto's S3 server, with the
single-PUT and the multipart path) and http (read-only, against a loopback HTTP server)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiobotocore.session import get_session

from glimpse.config import load_settings
from glimpse.stores import s3 as s3_driver
from glimpse.stores.base import (
    Capability,
    CapabilityMissing,
    ObjectNotFound,
    ResolvedRange,
    StoreError,
)
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import FilesystemStore
from glimpse.stores.http import HttpStore
from store_servers import HttpServer, MotoServer

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

MiB = 1024 * 1024
LARGE = 64 * MiB
ACCESS_KEY = "conformance-access"
SECRET_KEY = "conformance-secret-do-not-log"


async def _nothing() -> list[str]:
    return []


@dataclass
class Case:
    """A driver under test and the few things the suite needs to know about it."""

    store: CheckedStore
    seed: Callable[[str, bytes], Awaitable[str]]  # puts data by other means; returns a location
    missing: str  # a location with no object
    memory_bound: int  # most bytes traced while a large object is written and read
    part_size: int = MiB  # how much of a write is held at once (s3: one part)
    leftovers: Callable[[], Awaitable[list[str]]] = field(default=_nothing)
    pending_uploads: Callable[[], Awaitable[int]] | None = None

    @property
    def writable(self) -> bool:
        return Capability.WRITE in self.store.capabilities


def file_case(tmp_path: Path) -> Case:
    root = tmp_path / "store"
    store = CheckedStore(FilesystemStore("file", root))

    async def seed(key: str, data: bytes) -> str:
        return (await store.put(key, chunks_of(data))).location

    async def leftovers() -> list[str]:
        return sorted(p.name for p in root.iterdir()) if root.exists() else []

    return Case(
        store=store,
        seed=seed,
        missing=(root / "nothing-here").as_uri(),
        memory_bound=8 * MiB,
        leftovers=leftovers,
    )


def s3_case(moto: MotoServer, stack: contextlib.AsyncExitStack, **sizes: int) -> Case:
    """An s3 store on its own new bucket, built from settings as the registry builds it."""
    bucket = f"conformance-{uuid.uuid4().hex[:12]}"
    options = {
        "s3_store_host": moto.host,
        "s3_store_access_key": ACCESS_KEY,
        "s3_store_secret_key": SECRET_KEY,
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": "true",
        "s3_store_bucket_url_format": "path",
        **{f"s3_store_{name}": str(value) for name, value in sizes.items()},
    }
    settings = load_settings(None, enabled_backends="cold:s3", stores={"cold": options})
    store = CheckedStore(s3_driver.from_settings("cold", settings))
    stack.push_async_callback(store.aclose)
    part_size = sizes.get("large_object_chunk_size", 10) * MiB

    async def admin() -> S3Client:
        client = get_session().create_client(
            "s3",
            endpoint_url=moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        return await stack.enter_async_context(client)

    async def seed(key: str, data: bytes) -> str:
        return (await store.put(key, chunks_of(data))).location

    async def leftovers() -> list[str]:
        client = await admin()
        try:
            listed = await client.list_objects_v2(Bucket=bucket)
        except client.exceptions.NoSuchBucket:
            return []
        keys = [item["Key"] for item in listed.get("Contents", [])]
        return keys + [f"pending upload {u}" for u in await uploads(client)]

    async def uploads(client: S3Client) -> list[str]:
        listed = await client.list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in listed.get("Uploads", [])]

    async def pending_uploads() -> int:
        return len(await uploads(await admin()))

    return Case(
        store=store,
        seed=seed,
        missing=f"s3://{moto.host}/{bucket}/nothing-here",
        memory_bound=3 * part_size,
        part_size=part_size,
        leftovers=leftovers,
        pending_uploads=pending_uploads,
    )


def http_case(server: HttpServer, stack: contextlib.AsyncExitStack) -> Case:
    store = CheckedStore(HttpStore("web"))
    stack.push_async_callback(store.aclose)

    async def seed(key: str, data: bytes) -> str:
        (server.root / key).write_bytes(data)
        return f"{server.base}/files/{key}"

    return Case(
        store=store, seed=seed, missing=f"{server.base}/files/nothing-here", memory_bound=8 * MiB
    )


CASES = ["file", "s3", "s3-multipart", "http"]


@pytest.fixture(params=CASES)
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Case]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "file":
            yield file_case(tmp_path)
        elif request.param == "s3":
            # The defaults: objects up to one 10 MiB part go in one PUT.
            yield s3_case(request.getfixturevalue("moto_server"), stack)
        elif request.param == "s3-multipart":
            # S3's smallest part: anything over 5 MiB is a multipart upload.
            moto = request.getfixturevalue("moto_server")
            yield s3_case(moto, stack, large_object_size=5, large_object_chunk_size=5)
        else:
            yield http_case(request.getfixturevalue("http_server"), stack)


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_write_read_delete(case: Case) -> None:
    store = case.store
    data = os.urandom(300_000)
    if not case.writable:
        with pytest.raises(CapabilityMissing):
            await store.put("image-1", chunks_of(data))
        location = await case.seed("image-1", data)
        assert await store.size(location) == len(data)
        assert await read_all(store.get(location)) == data
        with pytest.raises(CapabilityMissing):
            await store.delete(location)
        assert await store.size(location) == len(data)
        return
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
    assert await case.leftovers() == []


async def test_location_for_is_where_put_stores(case: Case) -> None:
    if not case.writable:
        with pytest.raises(CapabilityMissing):
            case.store.location_for("image-2")
        return
    expected = case.store.location_for("image-2")
    stored = await case.store.put("image-2", chunks_of(b"keyed"))
    assert stored.location == expected
    assert await read_all(case.store.get(case.store.location_for("image-2"))) == b"keyed"
    await case.store.delete(expected)


async def test_write_across_part_boundaries(case: Case) -> None:
    """Sizes around one part: exactly one, one byte more, and two and a half."""
    if not case.writable:
        with pytest.raises(CapabilityMissing):
            await case.store.put("edge", chunks_of(b"e"))
        return
    block = os.urandom(MiB)
    for index, size in enumerate((case.part_size, case.part_size + 1, case.part_size * 5 // 2)):
        data = (block * (size // MiB + 1))[:size]
        stored = await case.store.put(f"edge-{index}", chunks_of(data, 300_000))
        assert stored.size == size
        assert await case.store.size(stored.location) == size
        assert await read_all(case.store.get(stored.location)) == data


async def test_empty_object(case: Case) -> None:
    location = (
        (await case.store.put("empty", chunks_of(b""))).location
        if case.writable
        else await case.seed("empty", b"")
    )
    assert await case.store.size(location) == 0
    assert await read_all(case.store.get(location)) == b""


async def test_ranges(case: Case) -> None:
    data = bytes(range(256)) * 10_000
    location = await case.seed("ranged", data)
    for start, stop in ((0, 1), (1000, 2_000_000), (len(data) - 5, len(data)), (7, 7)):
        span = ResolvedRange(start, stop)
        assert await read_all(case.store.get(location, span)) == data[start:stop]


async def test_missing_object(case: Case) -> None:
    with pytest.raises(ObjectNotFound):
        await case.store.size(case.missing)
    with pytest.raises(ObjectNotFound):
        await read_all(case.store.get(case.missing))
    with pytest.raises(ObjectNotFound):
        await read_all(case.store.get(case.missing, ResolvedRange(0, 10)))
    if case.writable:
        with pytest.raises(ObjectNotFound):
            await case.store.delete(case.missing)


async def test_failed_write_leaves_nothing(case: Case) -> None:
    """The stream fails after two and a half parts: past the start of a multipart upload."""
    block = b"x" * MiB
    fail_after = case.part_size * 5 // 2
    consumed = 0

    async def failing() -> AsyncIterator[bytes]:
        nonlocal consumed
        while consumed < fail_after:
            consumed += len(block)
            yield block
        raise RuntimeError("client went away")

    if not case.writable:
        with pytest.raises(CapabilityMissing):
            await case.store.put("broken", failing())
        assert consumed == 0
        return
    with pytest.raises(RuntimeError, match="client went away"):
        await case.store.put("broken", failing())
    assert consumed >= fail_after
    assert await case.leftovers() == []


async def test_cancelled_write_leaves_nothing(case: Case) -> None:
    if not case.writable:
        with pytest.raises(CapabilityMissing):
            await case.store.put("cancelled", chunks_of(b"y"))
        return
    block = b"y" * MiB
    far_enough = asyncio.Event()
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            if sent >= 3 * case.part_size:
                far_enough.set()
            yield block
            sent += len(block)
            await asyncio.sleep(0)

    task = asyncio.create_task(case.store.put("cancelled", endless()))
    await far_enough.wait()
    if case.pending_uploads is not None:
        assert await case.pending_uploads() == 1  # a multipart upload is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await case.leftovers() == []


async def test_concurrent_writers(case: Case) -> None:
    blobs = {f"img-{i}": os.urandom(200_000 + i) for i in range(6)}
    if not case.writable:
        with pytest.raises(CapabilityMissing):
            await case.store.put("img-0", chunks_of(blobs["img-0"]))
        return
    stored = await asyncio.gather(*(case.store.put(k, chunks_of(v)) for k, v in blobs.items()))
    for (key, data), result in zip(blobs.items(), stored, strict=True):
        assert result.size == len(data), key
        assert await read_all(case.store.get(result.location)) == data


async def test_large_object_streams_in_bounded_memory(case: Case) -> None:
    block = os.urandom(MiB)
    expected = hashlib.sha256()
    for _ in range(LARGE // MiB):
        expected.update(block)

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(LARGE // MiB):
            yield block

    # Connections, bucket and client set-up (botocore loads its S3 model) happen before the
    # measurement: it is about what streaming holds, not what a driver keeps once started.
    warm = await case.seed("warm-up", b"w")
    assert await read_all(case.store.get(warm)) == b"w"
    if not case.writable:
        location = await case.seed("large", block * (LARGE // MiB))
    tracemalloc.start()
    try:
        if case.writable:
            stored = await case.store.put("large", generated())
            assert stored.size == LARGE
            location = stored.location
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        largest = 0
        async for chunk in case.store.get(location):
            largest = max(largest, len(chunk))
            digest.update(chunk)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected.hexdigest()
    assert largest <= MiB
    assert write_peak < case.memory_bound, f"write held {write_peak / MiB:.1f} MiB"
    assert read_peak < case.memory_bound, f"read held {read_peak / MiB:.1f} MiB"
    if case.writable:
        await case.store.delete(location)


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
    driver.capabilities = Capability.READ  # type: ignore[misc]  # a frozen field, changed on purpose
    store = CheckedStore(driver)
    with pytest.raises(CapabilityMissing):
        await store.put("x", chunks_of(b"x"))
    with pytest.raises(CapabilityMissing):
        store.get("file:///x", ResolvedRange(0, 1))
    with pytest.raises(CapabilityMissing):
        await store.delete("file:///x")
