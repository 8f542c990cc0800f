"""What only the http driver has: servers that ignore Range or hide the length, redirects,
proxies from its options."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from glimpse.config import load_settings
from glimpse.stores.base import ObjectNotFound, ResolvedRange, StoreError
from glimpse.stores.checked import CheckedStore
from glimpse.stores.http import HttpStore, from_settings
from store_servers import HttpServer


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
async def store() -> AsyncIterator[CheckedStore]:
    checked = CheckedStore(HttpStore("web"))
    yield checked
    await checked.aclose()


@pytest.fixture
def data(http_server: HttpServer) -> bytes:
    content = os.urandom(3 * 1024 * 1024 + 17)
    (http_server.root / "image").write_bytes(content)
    return content


async def test_server_ignoring_range_still_yields_only_the_span(
    store: CheckedStore, http_server: HttpServer, data: bytes
) -> None:
    location = f"{http_server.base}/norange/image"
    for start, stop in ((0, 10), (1_500_000, 2_600_000), (len(data) - 3, len(data))):
        got = await read_all(store.get(location, ResolvedRange(start, stop)))
        assert got == data[start:stop]
    assert await read_all(store.get(location)) == data


async def test_span_past_the_end_of_a_server_ignoring_range_fails(
    store: CheckedStore, http_server: HttpServer, data: bytes
) -> None:
    span = ResolvedRange(len(data) - 1, len(data) + 10)  # the object shrank since it was sized
    with pytest.raises(StoreError, match="ended early"):
        await read_all(store.get(f"{http_server.base}/norange/image", span))


async def test_size_without_content_length_on_head(
    store: CheckedStore, http_server: HttpServer, data: bytes
) -> None:
    assert await store.size(f"{http_server.base}/nolength/image") == len(data)
    assert await store.size(f"{http_server.base}/files/image") == len(data)


async def test_redirects_are_followed_up_to_a_limit(
    store: CheckedStore, http_server: HttpServer, data: bytes
) -> None:
    location = f"{http_server.base}/redirect/3/image"
    assert await store.size(location) == len(data)
    assert await read_all(store.get(location, ResolvedRange(5, 50))) == data[5:50]
    with pytest.raises(StoreError, match="TooManyRedirects"):
        await store.size(f"{http_server.base}/redirect/9/image")
    with pytest.raises(ObjectNotFound):
        await store.size(f"{http_server.base}/redirect/2/missing")


async def test_refuses_other_schemes_and_hides_credentials(store: CheckedStore) -> None:
    with pytest.raises(StoreError, match="not an http"):
        await store.size("ftp://host/image")
    with pytest.raises(StoreError) as failed:
        await read_all(store.get("http://user:hunter2@127.0.0.1:9/image"))
    assert "hunter2" not in str(failed.value)


async def test_proxy_information_routes_requests_through_the_proxy(
    http_server: HttpServer, data: bytes
) -> None:
    proxy = http_server.base.removeprefix("http://")
    settings = load_settings(
        None,
        enabled_backends="web:http",
        stores={"web": {"http_proxy_information": f"http:{proxy}", "https_insecure": "false"}},
    )
    assert settings.stores["web"].http_proxy_information == {"http": proxy}
    store = CheckedStore(from_settings("web", settings))
    try:
        # The name does not resolve: only the proxy can answer.
        location = "http://images.invalid/files/image"
        assert await store.size(location) == len(data)
        assert await read_all(store.get(location, ResolvedRange(0, 4))) == data[:4]
    finally:
        await store.aclose()
    assert http_server.proxied == [location, location]


async def test_server_errors_are_store_errors(store: CheckedStore, http_server: HttpServer) -> None:
    location = f"{http_server.base}/status/503/image"
    with pytest.raises(StoreError, match="answered 503") as failed:
        await store.size(location)
    assert not isinstance(failed.value, ObjectNotFound)
    with pytest.raises(StoreError, match="answered 503"):
        await read_all(store.get(location))
