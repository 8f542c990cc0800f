"""What only the http driver has: servers that ignore Range or hide the length, redirects,
proxies from its options."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from egress import install_resolver, loopback_only
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


async def test_reads_pass_the_url_filter(http_server: HttpServer, data: bytes) -> None:
    location = f"{http_server.base}/files/image"
    refused = _filtered_store_for()
    try:
        with pytest.raises(StoreError, match=r"not allowed|not a public address"):
            await refused.size(location)
    finally:
        await refused.aclose()
    port = http_server.base.rsplit(":", 1)[1]
    allowed = _filtered_store_for(allowed_hosts="localhost", allowed_ports=port)
    try:
        # By name: the store connects to the address it checked, and keeps the Host header.
        by_name = f"http://localhost:{port}/files/image"
        assert await allowed.size(by_name) == len(data)
        assert await read_all(allowed.get(by_name, ResolvedRange(1, 5))) == data[1:5]
    finally:
        await allowed.aclose()


class _Redirecting(BaseHTTPRequestHandler):
    """Answers every request with a redirect to `target`."""

    target = ""

    def log_message(self, *_: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def _redirect_server(target: str) -> Iterator[str]:
    handler = type("Handler", (_Redirecting,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield str(server.server_port)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1/files/image", "http://169.254.169.254/latest/meta-data/"],
)
async def test_redirects_to_private_addresses_are_refused(target: str) -> None:
    with _redirect_server(target) as port:
        # Allowed by name (localhost), then redirected to an address that is not.
        store = _filtered_store_for(allowed_hosts="localhost", allowed_ports=f"{port},80")
        try:
            with pytest.raises(StoreError, match="is not allowed"):
                await store.size(f"http://localhost:{port}/image")
        finally:
            await store.aclose()


async def test_relative_redirects_stay_on_the_named_host(tmp_path: Path) -> None:
    """A redirect without a host resolves against the name, not the pinned address."""
    (tmp_path / "image").write_bytes(b"relative")

    class Relative(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_HEAD(self) -> None:
            if self.path == "/old":
                self.send_response(302)
                self.send_header("Location", "/new")
                self.send_header("Content-Length", "0")
            else:
                self.send_response(200)
                self.send_header("Content-Length", "8")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relative)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = str(server.server_port)
    store = _filtered_store_for(allowed_hosts="localhost", allowed_ports=port)
    try:
        assert await store.size(f"http://localhost:{port}/old") == len(b"relative")
    finally:
        await store.aclose()
        server.shutdown()
        server.server_close()


def _filtered_store_for(**filtering: str) -> CheckedStore:
    settings = load_settings(None, enabled_backends="web:http", import_filtering_opts=filtering)
    return CheckedStore(from_settings("web", settings))


@pytest.mark.parametrize("host", ["10.1.2.3", "100.64.0.9", "[fd00::5]", "192.168.7.7:8080"])
async def test_a_proxy_is_not_asked_for_private_addresses(
    http_server: HttpServer, data: bytes, host: str
) -> None:
    proxy = http_server.base.removeprefix("http://")
    settings = load_settings(
        None,
        enabled_backends="web:http",
        stores={"web": {"http_proxy_information": f"http:{proxy}"}},
        import_filtering_opts={"allowed_ports": ""},
    )
    store = CheckedStore(from_settings("web", settings))
    try:
        with pytest.raises(StoreError, match="not a public address"):
            await store.size(f"http://{host}/files/image")
        # A name is the proxy's to resolve; it still answers for one.
        assert await store.size("http://images.invalid/files/image") == len(data)
    finally:
        await store.aclose()
    assert http_server.proxied == ["http://images.invalid/files/image"]


@pytest.mark.parametrize("address", ["10.0.0.8", "100.64.3.2", "fc00::8", "2002:c0a8:101::"])
async def test_names_resolving_to_private_addresses_are_not_read(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    resolver = install_resolver(monkeypatch)
    resolver.add("mirror.test", [address])
    store = _filtered_store_for()
    try:
        with loopback_only(monkeypatch) as guard:
            with pytest.raises(StoreError, match="not a public address"):
                await store.size("http://mirror.test/image")
            with pytest.raises(StoreError, match="not a public address"):
                await read_all(store.get("http://mirror.test/image"))
    finally:
        await store.aclose()
    assert guard.refused == []
    assert resolver.asked == ["mirror.test", "mirror.test"]
