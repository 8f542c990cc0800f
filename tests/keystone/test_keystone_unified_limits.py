"""use_keystone_limits against a real Keystone: registered limits for the image service's
RegionOne endpoint, project limits for alice's project (`alpha`), enforced on image creation,
upload, staging and import as Glance enforces them, reported by /v2/info/usage, re-read after
[oslo_limit] cache_time, and a Keystone that does not answer refuses (503), never allows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from keystone_server import ADMIN_PASSWORD, KeystoneEnv, free_port

from glimpse.config import Settings
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime

pytestmark = pytest.mark.keystone

MiB = 1024 * 1024
OCTET = {"Content-Type": "application/octet-stream"}
REGISTERED = {
    "image_size_total": 1000,
    "image_stage_total": 1000,
    "image_count_total": 100,
    "image_count_uploading": 10,
}
OVER = (
    "The request returned a 413 Request Entity Too Large. This generally means that rate "
    "limiting or a quota threshold was breached.\n\nThe response body:\n"
)


class Limits:
    """The image service's limits in Keystone, set through its admin API."""

    def __init__(self, keystone: KeystoneEnv) -> None:
        self.admin = keystone.admin
        [service] = self.admin.call("GET", "/services", params={"type": "image"})["services"]
        self.service_id = str(service["id"])
        endpoints = self.admin.call(
            "GET",
            "/endpoints",
            params={"service_id": self.service_id, "interface": "public", "region_id": "RegionOne"},
        )["endpoints"]
        self.endpoint_id = str(endpoints[0]["id"])
        self.registered: list[str] = []
        self.project: list[str] = []

    def register(self) -> None:
        body = [
            {
                "service_id": self.service_id,
                "region_id": "RegionOne",
                "resource_name": name,
                "default_limit": value,
            }
            for name, value in REGISTERED.items()
        ]
        made = self.admin.call("POST", "/registered_limits", json={"registered_limits": body})
        self.registered = [entry["id"] for entry in made["registered_limits"]]

    def set(self, project_id: str, name: str, value: int) -> str:
        entry = {
            "service_id": self.service_id,
            "region_id": "RegionOne",
            "project_id": project_id,
            "resource_name": name,
            "resource_limit": value,
        }
        [made] = self.admin.call("POST", "/limits", json={"limits": [entry]})["limits"]
        self.project.append(made["id"])
        return str(made["id"])

    def change(self, limit_id: str, value: int) -> None:
        """A project limit's new value (Keystone leaves a PATCH to 0 unapplied: such a change
        is made by replacing the limit, under a new id)."""
        self.admin.call("PATCH", f"/limits/{limit_id}", json={"limit": {"resource_limit": value}})
        assert self.admin.call("GET", f"/limits/{limit_id}")["limit"]["resource_limit"] == value

    def replace(self, limit_id: str, value: int) -> str:
        """The project limit `limit_id` deleted and set again to `value`; the new id."""
        [entry] = [self.admin.call("GET", f"/limits/{limit_id}")["limit"]]
        self.admin.call("DELETE", f"/limits/{limit_id}")
        self.project.remove(limit_id)
        return self.set(entry["project_id"], entry["resource_name"], value)

    def clear_project_limits(self) -> None:
        for limit_id in self.project:
            self.admin.call("DELETE", f"/limits/{limit_id}")
        self.project.clear()

    def unregister(self) -> None:
        for limit_id in self.registered:
            self.admin.call("DELETE", f"/registered_limits/{limit_id}")


@pytest.fixture(scope="module")
def registered(keystone: KeystoneEnv) -> Iterator[Limits]:
    limits = Limits(keystone)
    limits.register()
    yield limits
    limits.unregister()


@pytest.fixture
def limits(registered: Limits) -> Iterator[Limits]:
    yield registered
    registered.clear_project_limits()


def oslo_limit(keystone: KeystoneEnv, limits: Limits, **overrides: Any) -> dict[str, Any]:
    """`[oslo_limit]` as Glance's documentation writes it: a system-scoped admin."""
    return {
        "endpoint_id": limits.endpoint_id,
        "auth_type": "password",
        "auth_url": keystone.url,
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "user_domain_name": "Default",
        "system_scope": "all",
        "cache_time": 3600,
        **overrides,
    }


@pytest.fixture
def limited_settings(
    make_settings: Callable[..., Settings], keystone: KeystoneEnv, limits: Limits
) -> Callable[..., Settings]:
    def make(**oslo: Any) -> Settings:
        return make_settings(
            auth_strategy="keystone",
            keystone_authtoken=keystone.authtoken_section(),
            use_keystone_limits=True,
            enabled_import_methods="glance-direct,web-download",
            oslo_limit=oslo_limit(keystone, limits, **oslo),
        )

    return make


@pytest.fixture
async def api(
    client_for: Callable[[Settings], Any], limited_settings: Callable[..., Settings]
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(limited_settings())
    return client


@pytest.fixture
def alice(keystone: KeystoneEnv) -> dict[str, str]:
    return {"X-Auth-Token": keystone.token(keystone.alice)}


async def new_image(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"name": "x", "disk_format": "raw", "container_format": "bare"}
    return await client.post("/v2/images", json=body, headers=headers)


async def queued(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await new_image(client, headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def over(project_id: str, *infos: str) -> str:
    return f"{OVER}Project {project_id} is over a limit for [{', '.join(infos)}]"


def info(name: str, limit: int, usage: int, delta: int) -> str:
    return (
        f"Resource {name} is over limit of {limit} due to current usage {usage} and delta {delta}"
    )


async def status_of(client: httpx.AsyncClient, image_id: str, headers: dict[str, str]) -> str:
    return str((await client.get(f"/v2/images/{image_id}", headers=headers)).json()["status"])


async def test_image_count_total_refuses_the_image_past_the_project_limit(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = keystone.alice.project_id
    limits.set(project, "image_count_total", 2)
    for _ in range(2):
        assert (await new_image(api, alice)).status_code == 201
    refused = await new_image(api, alice)
    assert refused.status_code == 413
    assert refused.json()["message"] == over(project, info("image_count_total", 2, 2, 1))
    images = (await api.get("/v2/images", headers=alice)).json()["images"]
    assert len(images) == 2
    # bob's project has only the registered limit (100).
    bob = {"X-Auth-Token": keystone.token(keystone.bob)}
    assert (await new_image(api, bob)).status_code == 201


async def test_parallel_creations_cannot_pass_image_count_total_together(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    limits.set(keystone.alice.project_id, "image_count_total", 2)
    answers = await asyncio.gather(*(new_image(api, alice) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [201, 201, 413, 413, 413]
    assert len((await api.get("/v2/images", headers=alice)).json()["images"]) == 2


async def test_a_changed_limit_is_obeyed_once_the_cache_time_has_passed(
    keystone: KeystoneEnv,
    limits: Limits,
    client_for: Callable[[Settings], Any],
    limited_settings: Callable[..., Settings],
    alice: dict[str, str],
) -> None:
    project = keystone.alice.project_id
    limit_id = limits.set(project, "image_count_total", 1)
    cached_long = await client_for(limited_settings(cache_time=3600))
    cached_briefly = await client_for(limited_settings(cache_time=1))
    assert (await new_image(cached_long, alice)).status_code == 201
    assert (await new_image(cached_long, alice)).status_code == 413
    assert (await new_image(cached_briefly, alice)).status_code == 413
    limits.change(limit_id, 2)
    await asyncio.sleep(1.1)  # past cache_briefly's cache_time
    assert (await new_image(cached_long, alice)).status_code == 413  # still the limit it read
    assert (await new_image(cached_briefly, alice)).status_code == 201


async def test_upload_is_held_to_image_size_total(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = keystone.alice.project_id
    limits.set(project, "image_size_total", 2)
    first = await queued(api, alice)
    put = await api.put(f"/v2/images/{first}/file", content=b"a" * MiB, headers=alice | OCTET)
    assert put.status_code == 204, put.text
    second = await queued(api, alice)
    refused = await api.put(
        f"/v2/images/{second}/file", content=b"b" * (2 * MiB), headers=alice | OCTET
    )
    assert refused.status_code == 413
    assert refused.json()["message"] == over(project, info("image_size_total", 2, 1, 2))
    assert await status_of(api, second, alice) == "queued"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"c" * MiB

    # Without a Content-Length the data is held to the limit as it streams.
    streamed = await api.put(f"/v2/images/{second}/file", content=chunked(), headers=alice | OCTET)
    assert streamed.status_code == 413
    assert "image_size_total is over limit of 2" in streamed.json()["message"]
    assert await status_of(api, second, alice) == "queued"
    fits = await api.put(f"/v2/images/{second}/file", content=b"d" * MiB, headers=alice | OCTET)
    assert fits.status_code == 204, fits.text


async def test_parallel_uploads_cannot_pass_image_size_total_together(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    limits.set(keystone.alice.project_id, "image_size_total", 2)
    images = [await queued(api, alice) for _ in range(3)]
    answers = await asyncio.gather(
        *(
            api.put(f"/v2/images/{i}/file", content=b"p" * MiB, headers=alice | OCTET)
            for i in images
        )
    )
    assert sorted(a.status_code for a in answers) == [204, 204, 413]
    statuses = sorted([await status_of(api, i, alice) for i in images])
    assert statuses == ["active", "active", "queued"]


async def test_image_count_uploading_refuses_upload_and_stage(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = keystone.alice.project_id
    limits.set(project, "image_count_uploading", 0)
    image_id = await queued(api, alice)
    expected = over(project, info("image_count_uploading", 0, 1, 0))
    for verb in ("file", "stage"):
        refused = await api.put(
            f"/v2/images/{image_id}/{verb}", content=b"u" * 10, headers=alice | OCTET
        )
        assert refused.status_code == 413, verb
        assert refused.json()["message"] == expected
        assert await status_of(api, image_id, alice) == "queued"


async def test_stage_is_held_to_image_stage_total(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    project = keystone.alice.project_id
    limits.set(project, "image_stage_total", 1)
    image_id = await queued(api, alice)
    url = f"/v2/images/{image_id}/stage"
    refused = await api.put(url, content=b"s" * (2 * MiB), headers=alice | OCTET)
    assert refused.status_code == 413
    assert refused.json()["message"] == over(project, info("image_stage_total", 1, 0, 2))
    assert await status_of(api, image_id, alice) == "queued"
    staged = await api.put(url, content=b"s" * MiB, headers=alice | OCTET)
    assert staged.status_code == 204, staged.text
    assert await status_of(api, image_id, alice) == "uploading"
    usage = (await api.get("/v2/info/usage", headers=alice)).json()["usage"]
    assert usage["image_stage_total"] == {"usage": 1, "limit": 1}


async def test_import_is_held_to_image_size_total(  # noqa: PLR0917 -- fixtures
    keystone: KeystoneEnv,
    limits: Limits,
    api: httpx.AsyncClient,
    client_for: Callable[[Settings], Any],
    limited_settings: Callable[..., Settings],
    alice: dict[str, str],
) -> None:
    """The import call is refused once the project is over image_size_total; the job adds
    the staged size to it and fails its task when that passes the limit (as Glance's flow)."""
    project = keystone.alice.project_id
    limit_id = limits.set(project, "image_size_total", 10)
    image_id = await queued(api, alice)
    staged = await api.put(
        f"/v2/images/{image_id}/stage", content=b"i" * MiB, headers=alice | OCTET
    )
    assert staged.status_code == 204, staged.text
    body = {"method": {"name": "glance-direct"}}
    accepted = await api.post(f"/v2/images/{image_id}/import", json=body, headers=alice)
    assert accepted.status_code == 202, accepted.text
    # Lowered before the job runs: its check reads the limit afresh (a new worker process).
    limit_id = limits.replace(limit_id, 0)
    worker = WorkerRuntime.build(limited_settings())
    try:
        [task] = (await api.get(f"/v2/images/{image_id}/tasks", headers=alice)).json()["tasks"]
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    [failed] = (await api.get(f"/v2/images/{image_id}/tasks", headers=alice)).json()["tasks"]
    assert failed["status"] == "failure"
    assert failed["message"] == over(project, info("image_size_total", 0, 0, 1))
    assert await status_of(api, image_id, alice) == "queued"
    # Over the limit now (another image holds 1 MiB): the import call itself is refused.
    other = await queued(api, alice)
    limits.change(limit_id, 1)
    # Each new app is a process that has not read the limits yet.
    fresh = await client_for(limited_settings())
    put = await fresh.put(f"/v2/images/{other}/file", content=b"o" * MiB, headers=alice | OCTET)
    assert put.status_code == 204, put.text
    limits.replace(limit_id, 0)
    again = await client_for(limited_settings())
    refused = await again.post(f"/v2/images/{image_id}/import", json=body, headers=alice)
    assert refused.status_code == 413
    assert refused.json()["message"] == over(project, info("image_size_total", 0, 1, 0))


async def test_usage_reports_keystone_limits(
    keystone: KeystoneEnv, limits: Limits, api: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    limits.set(keystone.alice.project_id, "image_count_total", 7)
    image_id = await queued(api, alice)
    put = await api.put(
        f"/v2/images/{image_id}/file", content=b"u" * (3 * MiB), headers=alice | OCTET
    )
    assert put.status_code == 204, put.text
    usage = (await api.get("/v2/info/usage", headers=alice)).json()["usage"]
    assert usage == {
        "image_size_total": {"usage": 3, "limit": 1000},
        "image_stage_total": {"usage": 0, "limit": 1000},
        "image_count_total": {"usage": 1, "limit": 7},
        "image_count_uploading": {"usage": 0, "limit": 10},
    }


async def test_keystone_unreachable_refuses_with_503(
    client_for: Callable[[Settings], Any],
    limited_settings: Callable[..., Settings],
    api: httpx.AsyncClient,
    alice: dict[str, str],
) -> None:
    image_id = await queued(api, alice)  # made while Keystone answered
    # Token validation still has Keystone; only the limits' auth_url answers nothing.
    closed = f"http://127.0.0.1:{free_port()}/v3"
    client = await client_for(limited_settings(auth_url=closed, timeout=5))
    unavailable = "The project's limits could not be read from the Identity service."
    refused = await new_image(client, alice)
    assert refused.status_code == 503
    assert refused.json()["message"] == unavailable
    for verb in ("file", "stage"):
        data = await client.put(
            f"/v2/images/{image_id}/{verb}", content=b"k" * 10, headers=alice | OCTET
        )
        assert data.status_code == 503, verb
        assert data.json()["message"] == unavailable
    assert await status_of(client, image_id, alice) == "queued"
    assert [i["id"] for i in (await client.get("/v2/images", headers=alice)).json()["images"]] == [
        image_id
    ]
    assert (await client.get("/v2/info/usage", headers=alice)).status_code == 503
