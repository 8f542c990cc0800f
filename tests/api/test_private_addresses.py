"""SSRF: with the default [import_filtering_opts], nothing a user names is fetched from an
address that is not globally routable: web-download, the Tasks API's import, the 2.17
locations API and JSON-patch location adds, whatever address class the name resolves to.

Names resolve through a stub (no DNS server is asked) and a guard refuses any connection off
loopback, so these tests send no traffic beyond 127.0.0.0/8 even when the filter fails. A real
server listens on 127.0.0.2:80 (the default allowed port): it must receive nothing unless
`allowed_hosts` names it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from egress import StubResolver, install_resolver, loopback_only
from glimpse.config import Settings
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OWNER, new_image

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
SERVER_ADDRESS = "127.0.0.2"
DATA = b"not for you " * 4096
PUBLIC = "93.184.215.14"  # never contacted: the guard refuses anything off loopback

# Each class of non-global address a name may resolve to.
PRIVATE = {
    "rfc1918-10": "10.0.0.5",
    "rfc1918-172": "172.20.1.1",
    "rfc1918-192": "192.168.1.20",
    "cgnat": "100.64.0.7",
    "loopback": SERVER_ADDRESS,
    "link-local": "169.254.169.254",
    "unique-local": "fd00::7",
    "ipv4-mapped": "::ffff:10.0.0.5",
    "6to4": "2002:a00:5::",
    "nat64": "64:ff9b::a00:5",
}


@dataclass
class Recorder:
    """What the server on 127.0.0.2:80 was asked: (method, path, Host) per request."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Recorder]:
    """An HTTP server on 127.0.0.2:80 serving DATA at /disk.raw, recording every request."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            return

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            recorder.requests.append((self.command, self.path, self.headers.get("Host", "")))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            if body:
                self.wfile.write(DATA)

    httpd = ThreadingHTTPServer((SERVER_ADDRESS, 80), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="private-server", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> StubResolver:
    return install_resolver(monkeypatch)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here: no connection off loopback was even attempted."""
    with loopback_only(monkeypatch) as guard:
        yield
    assert guard.refused == []


def settings_for(make_settings: Any, **overrides: Any) -> Settings:
    """An http store next to the default file store; [import_filtering_opts] as given (by
    default Glance's defaults: http and https on ports 80 and 443, any host)."""
    settings: Settings = make_settings(
        auth_strategy="trusted-proxy",
        enabled_backends="fast:file, web:http",
        glance_store={"default_backend": "fast"},
        show_multiple_locations=True,
        **overrides,
    )
    return settings


@pytest.fixture
def web_settings(make_settings: Any) -> Settings:
    return settings_for(make_settings)


@pytest.fixture
async def client(client_for: Any, web_settings: Settings) -> httpx.AsyncClient:
    result: httpx.AsyncClient = await client_for(web_settings)
    return result


@pytest.fixture
async def worker(web_settings: Settings) -> AsyncIterator[WorkerRuntime]:
    context = WorkerRuntime.build(web_settings)
    yield context
    await context.aclose()


async def queued(client: httpx.AsyncClient) -> str:
    return await new_image(client, OWNER, disk_format="raw", container_format="bare")


async def assert_untouched(client: httpx.AsyncClient, image_id: str) -> None:
    shown = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert (shown["status"], shown["size"], shown["locations"]) == ("queued", None, [])
    assert (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"] == []


@pytest.mark.parametrize("address", PRIVATE.values(), ids=PRIVATE.keys())
async def test_no_route_fetches_from_a_name_resolving_to_a_private_address(
    client: httpx.AsyncClient,
    resolver: StubResolver,
    server: Recorder,
    address: str,
) -> None:
    resolver.add("images.test", [address])
    url = "http://images.test/disk.raw"
    image_id = await queued(client)
    for headers in (OWNER, ADMIN):  # admins are not exempt: only allowed_hosts is
        added = await client.post(
            f"/v2/images/{image_id}/locations", json={"url": url}, headers=headers
        )
        assert added.status_code == 400, added.text
        assert added.json()["message"] == f"URI for add location does not pass filtering: {url}"
        patched = await client.patch(
            f"/v2/images/{image_id}",
            json=[{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}],
            headers={**PATCH, **headers},
        )
        assert patched.status_code == 400, patched.text
        assert patched.json()["message"] == f"URI for add location does not pass filtering: {url}"
    imported = await client.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": url}},
        headers=OWNER,
    )
    assert imported.status_code == 400, imported.text
    assert imported.json()["message"] == f"URI for web-download does not pass filtering: {url}"
    await assert_untouched(client, image_id)
    task = {
        "type": "import",
        "input": {
            "import_from": url,
            "import_from_format": "raw",
            "image_properties": {"disk_format": "raw", "container_format": "bare"},
        },
    }
    created = await client.post("/v2/tasks", json=task, headers=ADMIN)
    assert created.status_code == 400, created.text
    assert created.json()["message"] == f"URI for legacy import task does not pass filtering: {url}"
    assert server.requests == []


async def test_the_server_on_127_0_0_2_receives_no_request_from_web_download(
    client: httpx.AsyncClient, server: Recorder
) -> None:
    image_id = await queued(client)
    for uri in (f"http://{SERVER_ADDRESS}/disk.raw", "http://localhost/disk.raw"):
        response = await client.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "web-download", "uri": uri}},
            headers=OWNER,
        )
        assert response.status_code == 400, response.text
        assert response.json()["message"] == f"URI for web-download does not pass filtering: {uri}"
    await assert_untouched(client, image_id)
    assert server.requests == []


@pytest.mark.parametrize("rebound_to", [SERVER_ADDRESS, "2002:7f00:2::"], ids=["ipv4", "6to4"])
async def test_a_name_rebound_to_a_private_address_after_admission_fails_the_task(
    client: httpx.AsyncClient,
    worker: WorkerRuntime,
    resolver: StubResolver,
    server: Recorder,
    rebound_to: str,
) -> None:
    """DNS rebinding: the name is public when the API admits the import, then resolves to
    the server's private address when the worker fetches it."""
    resolver.add("rebind.test", [PUBLIC], [rebound_to])
    uri = "http://rebind.test/disk.raw"
    image_id = await queued(client)
    response = await client.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": uri}},
        headers=OWNER,
    )
    assert response.status_code == 202, response.text
    [task] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]

    await import_.run(worker, task["id"])

    [failed] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]
    assert failed["status"] == "failure"
    assert failed["message"] == (
        f"Download of {uri} refused: URI host rebind.test is not a public address: {uri}"
    )
    shown = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert (shown["status"], shown["size"], shown["locations"]) == ("queued", None, [])
    assert "os_glance_import_task" not in shown
    assert resolver.asked == ["rebind.test", "rebind.test"]
    assert server.requests == []


async def test_a_location_rebound_to_a_private_address_after_admission_fails_its_task(
    client: httpx.AsyncClient, worker: WorkerRuntime, resolver: StubResolver, server: Recorder
) -> None:
    """The 2.17 add-location's worker checks the URL again: a name public when the API
    admitted it and private when the worker reads it is never fetched."""
    resolver.add("rebind.test", [PUBLIC], [SERVER_ADDRESS])
    url = "http://rebind.test/disk.raw"
    image_id = await queued(client)
    response = await client.post(
        f"/v2/images/{image_id}/locations", json={"url": url}, headers=OWNER
    )
    assert response.status_code == 202, response.text
    [task] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]

    await import_.run(worker, task["id"])

    [failed] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]
    assert (failed["type"], failed["status"]) == ("location_import", "failure")
    assert failed["message"] == f"URI for add location does not pass filtering: {url}"
    shown = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert (shown["status"], shown["size"], shown["locations"]) == ("queued", None, [])
    assert "os_glance_import_task" not in shown
    assert server.requests == []


async def test_allowed_hosts_let_a_private_mirror_be_used(
    make_settings: Any, client_for: Any, resolver: StubResolver, server: Recorder
) -> None:
    """The same server is reached once `allowed_hosts` names it, by name or by address."""
    resolver.add("mirror.test", [SERVER_ADDRESS])
    settings = settings_for(
        make_settings, import_filtering_opts={"allowed_hosts": f"mirror.test, {SERVER_ADDRESS}"}
    )
    client: httpx.AsyncClient = await client_for(settings)
    worker = WorkerRuntime.build(settings)
    try:
        for url in ("http://mirror.test/disk.raw", f"http://{SERVER_ADDRESS}/disk.raw"):
            image_id = await queued(client)
            response = await client.post(
                f"/v2/images/{image_id}/locations", json={"url": url}, headers=OWNER
            )
            assert response.status_code == 202, response.text
            tasks = await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)
            [task] = tasks.json()["tasks"]
            await import_.run(worker, task["id"])
            shown = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
            assert (shown["status"], shown["size"]) == ("active", len(DATA))
            assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    finally:
        await worker.aclose()
    hosts = {host for _, _, host in server.requests}
    assert hosts == {"mirror.test", SERVER_ADDRESS}
