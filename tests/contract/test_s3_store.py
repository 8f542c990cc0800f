"""What only the s3 driver has: its locations, credentials kept out of them and out of logs,
the bucket on first put, and its options."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.stores import s3_multipart
from glimpse.stores.base import ObjectNotFound, StoreError
from glimpse.stores.checked import CheckedStore
from glimpse.stores.s3 import S3Store, from_settings
from store_servers import MotoServer
from support import free_port

ACCESS_KEY = "AKIA-s3-test-access"
SECRET_KEY = "s3-test-secret-never-in-logs"


def s3_store(moto: MotoServer, **options: Any) -> S3Store:
    section = {
        "s3_store_host": moto.endpoint,
        "s3_store_access_key": ACCESS_KEY,
        "s3_store_secret_key": SECRET_KEY,
        "s3_store_bucket": f"s3-test-{uuid.uuid4().hex[:12]}",
        "s3_store_create_bucket_on_put": True,
        "s3_store_bucket_url_format": "path",
        **options,
    }
    settings = load_settings(None, enabled_backends="cold:s3", stores={"cold": section})
    return from_settings("cold", settings)


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
async def store(moto_server: MotoServer) -> AsyncIterator[CheckedStore]:
    checked = CheckedStore(s3_store(moto_server))
    yield checked
    await checked.aclose()


async def test_location_names_endpoint_bucket_and_key_only(
    store: CheckedStore, moto_server: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="glimpse")
    driver = store.driver
    assert isinstance(driver, S3Store)
    stored = await store.put("image-1", chunks_of(b"data"))
    assert stored.location == f"s3://{moto_server.host}/{driver.config.bucket}/image-1"
    with pytest.raises(ObjectNotFound) as missing:
        await store.size(stored.location + "-gone")
    text = " ".join([caplog.text, repr(driver), str(missing.value), stored.location])
    assert ACCESS_KEY not in text
    assert SECRET_KEY not in text
    settings = load_settings(None, stores={"x": {"s3_store_secret_key": "zz-secret-zz"}})
    assert "zz-secret-zz" not in repr(settings)


async def test_reads_legacy_locations_with_embedded_credentials(
    store: CheckedStore, moto_server: MotoServer
) -> None:
    stored = await store.put("legacy", chunks_of(b"old"))
    legacy = stored.location.replace("s3://", "s3://olduser:oldsecret@")
    assert await read_all(store.get(legacy)) == b"old"
    assert await store.size(legacy) == 3
    assert moto_server.host in legacy


async def test_refuses_locations_of_other_endpoints(store: CheckedStore) -> None:
    for location in (
        "s3://elsewhere.example:9000/bucket/key",
        "s3://user:pw@elsewhere.example/bucket/key",
        "swift://host/bucket/key",
        "s3://",
    ):
        with pytest.raises(StoreError) as refused:
            await store.size(location)
        assert not isinstance(refused.value, ObjectNotFound)
        assert "pw@" not in str(refused.value)


async def test_https_endpoint_gives_s3_https_locations() -> None:
    settings = load_settings(
        None,
        enabled_backends="cold:s3",
        stores={
            "cold": {
                "s3_store_host": "https://s3.eu-west-3.amazonaws.com/",
                "s3_store_access_key": "a",
                "s3_store_secret_key": "b",
                "s3_store_bucket": "images",
            }
        },
    )
    driver = from_settings("cold", settings)
    assert driver.location_for("abc") == "s3+https://s3.eu-west-3.amazonaws.com/images/abc"
    assert driver.config.region_name == "eu-west-3"
    assert driver.config.large_object_size == 100 * 1024 * 1024
    assert driver.config.part_size == 10 * 1024 * 1024
    await driver.aclose()


async def test_missing_bucket_is_an_error_unless_created_on_put(moto_server: MotoServer) -> None:
    driver = s3_store(moto_server, s3_store_create_bucket_on_put=False)
    try:
        with pytest.raises(StoreError, match="s3_store_create_bucket_on_put"):
            await driver.put("x", chunks_of(b"x"))
    finally:
        await driver.aclose()


async def test_keys_with_a_slash_are_refused(store: CheckedStore) -> None:
    with pytest.raises(StoreError):
        await store.put("a/b", chunks_of(b"x"))


async def test_object_straddling_the_threshold_uses_multipart(moto_server: MotoServer) -> None:
    """large_object_size below one part: a 6 MiB object is one part of a multipart upload."""
    driver = s3_store(moto_server, s3_store_large_object_size=0, s3_store_large_object_chunk_size=7)
    data = os.urandom(6 * 1024 * 1024)
    try:
        stored = await driver.put("mp", chunks_of(data))
        client = await driver._s3()  # noqa: SLF001 -- the object's ETag tells how it was written
        head = await client.head_object(Bucket=driver.config.bucket, Key="mp")
        assert head["ETag"].strip('"').endswith("-1")  # S3's multipart ETag: <md5>-<parts>
        assert await read_all(driver.get(stored.location)) == data
    finally:
        await driver.aclose()


def test_required_options_are_named() -> None:
    settings = load_settings(
        None, enabled_backends="cold:s3", stores={"cold": {"s3_store_host": "h"}}
    )
    with pytest.raises(ConfigError) as error:
        from_settings("cold", settings)
    message = str(error.value)
    assert message.startswith("[cold]")
    for option in ("s3_store_bucket", "s3_store_access_key", "s3_store_secret_key"):
        assert option in message
    assert "s3_store_host" not in message


def test_part_size_below_s3_minimum_is_refused() -> None:
    with pytest.raises(ConfigError, match="s3_store_large_object_chunk_size"):
        load_settings(
            None,
            enabled_backends="cold:s3",
            stores={"cold": {"s3_store_large_object_chunk_size": 4}},
        )


async def test_cancel_while_the_multipart_upload_is_being_created_leaves_nothing(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server has created the upload but its answer has not arrived when the put is
    cancelled: the upload is aborted once its id is known."""
    driver = s3_store(moto_server, s3_store_large_object_size=5, s3_store_large_object_chunk_size=5)
    client = await driver._s3()  # noqa: SLF001 -- to hold back the server's answer
    real_create = client.create_multipart_upload
    created, release = asyncio.Event(), asyncio.Event()

    async def slow_answer(**kwargs: Any) -> Any:
        answer = await real_create(**kwargs)
        created.set()
        await release.wait()
        return answer

    monkeypatch.setattr(client, "create_multipart_upload", slow_answer)

    async def endless() -> AsyncIterator[bytes]:
        block = b"z" * 1024 * 1024
        while True:
            yield block

    bucket = driver.config.bucket
    try:
        task = asyncio.create_task(driver.put("held", endless()))
        await created.wait()
        listed = await client.list_multipart_uploads(Bucket=bucket)
        assert len(listed.get("Uploads", [])) == 1
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        listed = await client.list_multipart_uploads(Bucket=bucket)
        assert listed.get("Uploads", []) == []
        assert (await client.list_objects_v2(Bucket=bucket)).get("Contents", []) == []
    finally:
        await driver.aclose()


async def test_bucket_created_with_the_configured_region(moto_server: MotoServer) -> None:
    driver = s3_store(moto_server, s3_store_region_name="eu-west-3")
    try:
        stored = await driver.put("r", chunks_of(b"r"))
        client = await driver._s3()  # noqa: SLF001 -- to read the bucket's region
        located = await client.get_bucket_location(Bucket=driver.config.bucket)
        assert located["LocationConstraint"] == "eu-west-3"
        assert await read_all(driver.get(stored.location)) == b"r"
    finally:
        await driver.aclose()


async def test_object_over_the_part_limit_fails_and_leaves_nothing(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_multipart, "MAX_PARTS", 2)
    driver = s3_store(moto_server, s3_store_large_object_size=5, s3_store_large_object_chunk_size=5)
    block = b"p" * 1024 * 1024

    async def fifteen_mib() -> AsyncIterator[bytes]:
        for _ in range(15):
            yield block

    try:
        with pytest.raises(StoreError, match="exceeds 2 parts of 5 MiB"):
            await driver.put("too-big", fifteen_mib())
        client = await driver._s3()  # noqa: SLF001 -- to list what is left
        bucket = driver.config.bucket
        assert (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []
        assert (await client.list_objects_v2(Bucket=bucket)).get("Contents", []) == []
    finally:
        await driver.aclose()


async def test_unreachable_endpoint_is_a_store_error() -> None:
    settings = load_settings(
        None,
        enabled_backends="cold:s3",
        stores={
            "cold": {
                "s3_store_host": f"127.0.0.1:{free_port()}",
                "s3_store_access_key": ACCESS_KEY,
                "s3_store_secret_key": SECRET_KEY,
                "s3_store_bucket": "b",
            }
        },
    )
    driver = from_settings("cold", settings)
    try:
        with pytest.raises(StoreError) as failed:
            await driver.size(driver.location_for("k"))
        assert not isinstance(failed.value, ObjectNotFound)
        assert "HEAD b/k failed" in str(failed.value)
        assert SECRET_KEY not in str(failed.value)
    finally:
        await driver.aclose()
