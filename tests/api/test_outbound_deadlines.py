"""Outbound calls have overall deadlines, not only connect and read timeouts: against a
loopback server that answers a few bytes at a time (each wait well within any read timeout),
the http store, the S3 store, Barbican, Keystone (for tokens and for key cleanups), web-download
and the 2.17 location add's hashing all give up with the reason once their deadline passes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from glimpse.config import load_settings
from glimpse.config.auth_options import BarbicanOptions, KeystoneAuthTokenOptions
from glimpse.keymanager.barbican import BarbicanClient, BarbicanError
from glimpse.keymanager.keystone import IdentityClient, KeystoneError
from glimpse.stores.base import StoreError
from glimpse.stores.checked import CheckedStore
from glimpse.stores.http import from_settings as http_store
from glimpse.stores.s3 import from_settings as s3_store
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import OWNER, new_image
from slow_server import Mode, SlowServer, slow_server

DATA = b"d" * (64 * 1024)


@pytest.fixture
def dripping_headers() -> Iterator[SlowServer]:
    with slow_server("drip-headers") as server:
        yield server


@pytest.fixture
def dripping_body() -> Iterator[SlowServer]:
    with slow_server("drip-body") as server:
        yield server


def filtering(server: SlowServer) -> dict[str, str]:
    """[import_filtering_opts] that admit the loopback server (by address and port)."""
    return {"allowed_hosts": "127.0.0.1", "allowed_ports": str(server.port)}


async def read_all(store: CheckedStore, location: str) -> bytes:
    return b"".join([chunk async for chunk in store.get(location)])


@pytest.mark.parametrize("mode", ["drip-headers", "drip-body"])
async def test_http_store_requests_end_at_their_deadline(mode: Mode) -> None:
    with slow_server(mode) as server:
        settings = load_settings(
            None,
            enabled_backends="web:http",
            stores={"web": {"http_request_timeout": "1"}},
            import_filtering_opts=filtering(server),
        )
        store = CheckedStore(http_store("web", settings))
        try:
            location = f"{server.base}/image"
            if mode == "drip-headers":
                with pytest.raises(StoreError, match=r"size of .* did not finish within 1 s"):
                    await store.size(location)
                with pytest.raises(StoreError, match=r"GET .* did not finish within 1 s"):
                    await read_all(store, location)
            else:
                with pytest.raises(StoreError, match=r"GET .* stalled for 1 s"):
                    await read_all(store, location)
        finally:
            await store.aclose()


@pytest.mark.parametrize("mode", ["drip-headers", "drip-body"])
async def test_s3_requests_end_at_their_deadline(mode: Mode) -> None:
    with slow_server(mode) as server:
        settings = load_settings(
            None,
            enabled_backends="cold:s3",
            stores={
                "cold": {
                    "s3_store_host": server.base,
                    "s3_store_access_key": "access",
                    "s3_store_secret_key": "secret",
                    "s3_store_bucket": "images",
                    "s3_store_bucket_url_format": "path",
                    "s3_store_request_timeout": "1",
                }
            },
        )
        store = CheckedStore(s3_store("cold", settings))
        location = f"s3://127.0.0.1:{server.port}/images/key"
        try:
            if mode == "drip-headers":
                with pytest.raises(StoreError, match=r"HEAD images/key did not finish within 1 s"):
                    await store.size(location)
            else:
                with pytest.raises(StoreError, match=r"GET images/key failed: .* stalled for 1 s"):
                    await read_all(store, location)
        finally:
            await store.aclose()


async def test_key_manager_calls_end_at_their_deadline(dripping_headers: SlowServer) -> None:
    barbican = BarbicanOptions(barbican_endpoint=dripping_headers.base)
    keystone = KeystoneAuthTokenOptions(
        auth_url=f"{dripping_headers.base}/v3", username="glimpse", password="secret"
    )
    # Socket timeouts far longer than the deadline: only the deadline can end these calls.
    async with httpx.AsyncClient(timeout=60) as http:
        with pytest.raises(BarbicanError, match="Barbican unreachable: DeadlineExceeded"):
            await BarbicanClient(barbican, http, deadline=1.0).delete_secret("t", "secret-id")
        identity = IdentityClient(keystone, keystone.auth_url or "", http, deadline=1.0)
        with pytest.raises(KeystoneError, match="Keystone unreachable: DeadlineExceeded"):
            await identity.service_token()


async def test_token_validation_ends_at_its_deadline(
    make_settings: Any, client_for: Any, dripping_headers: SlowServer
) -> None:
    settings = make_settings(
        auth_strategy="keystone",
        keystone_authtoken={
            "auth_url": f"{dripping_headers.base}/v3",
            "username": "glimpse",
            "password": "secret",
            "project_name": "service",
            "http_connect_timeout": "60",
            "http_request_timeout": "1",
        },
    )
    client = await client_for(settings)
    response = await client.get("/v2/images", headers={"X-Auth-Token": "a-token"})
    assert response.status_code == 503, response.text
    assert response.json()["message"] == "The Keystone service is temporarily unavailable."
    assert dripping_headers.requests == ["POST /v3/auth/tokens?nocatalog=1 HTTP/1.1"]


async def test_a_web_download_ends_at_its_deadline(
    make_settings: Any, client_for: Any, dripping_body: SlowServer
) -> None:
    settings = make_settings(
        import_filtering_opts=filtering(dripping_body), task={"web_download_timeout": "1"}
    )
    client = await client_for(settings)
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    uri = f"{dripping_body.base}/disk.raw"
    body = {"method": {"name": "web-download", "uri": uri}}
    assert (await client.post(f"/v2/images/{image_id}/import", json=body)).status_code == 202
    [task] = (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    [failed] = (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
    assert failed["status"] == "failure"
    assert failed["message"] == (
        f"Download of {uri} failed: DeadlineExceeded: the source did not finish within 1 s"
    )
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"


def web_store_settings(make_settings: Any, server: SlowServer, **overrides: Any) -> Any:
    return make_settings(
        auth_strategy="trusted-proxy",
        enabled_backends="fast:file, web:http",
        glance_store={"default_backend": "fast"},
        stores={"web": {"http_request_timeout": "60"}},
        import_filtering_opts=filtering(server),
        **overrides,
    )


async def test_a_location_add_ends_at_its_deadline(
    make_settings: Any, client_for: Any, dripping_body: SlowServer
) -> None:
    settings = web_store_settings(
        make_settings, dripping_body, location_add_timeout="1", http_retries="2"
    )
    client = await client_for(settings)
    image_id = await new_image(client, OWNER, disk_format="raw", container_format="bare")
    url = f"{dripping_body.base}/disk.raw"
    validation = {"os_hash_algo": "sha256", "os_hash_value": "ab" * 32}
    response = await client.post(
        f"/v2/images/{image_id}/locations",
        json={"url": url, "validation_data": validation},
        headers=OWNER,
    )
    assert response.status_code == 202, response.text
    [task] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    [failed] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"]
    assert (failed["type"], failed["status"]) == ("location_import", "failure")
    assert failed["message"] == (
        f"Hash calculation failed for image {image_id} data: "
        "reading the data did not finish within 1 s"
    )
    get_lines = [line for line in dripping_body.requests if line.startswith("GET")]
    assert len(get_lines) == 2  # http_retries attempts
    shown = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert (shown["status"], shown["size"], shown["os_hash_algo"]) == ("queued", None, None)
