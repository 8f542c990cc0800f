"""Who gets what: every route of the app, for every persona, with the exact status code.

The route list comes from the application itself, so a new route without an expectation here
fails the suite. Each route runs against an image owned by project `owner`, with data and
tagged `t`: a shared one (shared with `friend`, pending, and `pal`, accepted), then a public
one (no members; `friend` and `pal` are just other projects). Routes that change state get a
fresh image for every persona. `{member_id}` is always `friend`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import httpx
from metadef_expectations import METADEF_EXPECTED

from factories import MULTISTORE, app_routes
from glimpse_api.app import create_app
from personas import ADMIN, ANONYMOUS, OTHER, OWNER, OWNER_READER, persona, proxy_client

FRIEND_PENDING = persona("friend", "member", "reader", user="fred")
PAL_ACCEPTED = persona("pal", "member", "reader", user="paula")

PERSONAS: Final = {
    "owner member": OWNER,
    "owner reader": OWNER_READER,
    "other project": OTHER,
    "pending member": FRIEND_PENDING,
    "accepted member": PAL_ACCEPTED,
    "admin": ADMIN,
    "anonymous": ANONYMOUS,
}
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"

# (method, path) -> statuses in the order of PERSONAS.
EXPECTED: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    ("GET", "/"): (300, 300, 300, 300, 300, 300, 300),
    ("GET", "/versions"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/openapi.json"): (200, 200, 200, 200, 200, 200, 200),
    # Load balancers ask without credentials, as of Glance's paste pipeline.
    ("GET", "/healthcheck"): (200, 200, 200, 200, 200, 200, 200),
    ("HEAD", "/healthcheck"): (204, 204, 204, 204, 204, 204, 204),
    ("GET", "/healthcheck/ready"): (200, 200, 200, 200, 200, 200, 200),
    # Open to [metrics] allowed_networks (loopback here) whatever the identity, as a scraper asks.
    ("GET", "/metrics"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/image"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/images"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/member"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/members"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/task"): (200, 200, 200, 200, 200, 200, 200),
    ("GET", "/v2/schemas/tasks"): (200, 200, 200, 200, 200, 200, 200),
    # tasks_api_access is admin-only by default; the task id does not exist.
    ("GET", "/v2/tasks"): (403, 403, 403, 403, 403, 200, 401),
    ("GET", "/v2/tasks/{task_id}"): (403, 403, 403, 403, 403, 404, 401),
    ("POST", "/v2/tasks"): (403, 403, 403, 403, 403, 201, 401),
    # Tasks are never deleted by request (they expire); who may use the Tasks API learns so.
    ("DELETE", "/v2/tasks/{task_id}"): (403, 403, 403, 403, 403, 405, 401),
    ("GET", "/v2/info/import"): (200, 200, 200, 200, 200, 200, 401),
    ("POST", "/v2/images"): (201, 403, 201, 201, 201, 201, 401),
    ("GET", "/v2/images"): (200, 200, 200, 200, 200, 200, 401),
    ("GET", "/v2/images/{image_id}"): (200, 200, 404, 200, 200, 200, 401),
    ("PATCH", "/v2/images/{image_id}"): (200, 403, 404, 403, 403, 200, 401),
    ("DELETE", "/v2/images/{image_id}"): (204, 403, 404, 403, 403, 204, 401),
    ("PUT", "/v2/images/{image_id}/file"): (204, 403, 404, 403, 403, 204, 401),
    ("GET", "/v2/images/{image_id}/file"): (200, 403, 404, 200, 200, 200, 401),
    ("POST", "/v2/images/{image_id}/actions/deactivate"): (204, 403, 404, 403, 403, 204, 401),
    ("POST", "/v2/images/{image_id}/actions/reactivate"): (204, 403, 404, 403, 403, 204, 401),
    ("PUT", "/v2/images/{image_id}/tags/{tag}"): (204, 403, 404, 403, 403, 204, 401),
    ("DELETE", "/v2/images/{image_id}/tags/{tag}"): (204, 403, 404, 403, 403, 204, 401),
    ("GET", "/v2/images/{image_id}/members"): (200, 200, 404, 200, 200, 200, 401),
    ("POST", "/v2/images/{image_id}/members"): (200, 403, 404, 403, 403, 200, 401),
    ("GET", "/v2/images/{image_id}/members/{member_id}"): (200, 200, 404, 200, 404, 200, 401),
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): (403, 403, 404, 200, 404, 200, 401),
    ("DELETE", "/v2/images/{image_id}/members/{member_id}"): (
        204,
        403,
        404,
        403,
        404,
        204,
        401,
    ),
    ("GET", "/v2/info/stores"): (200, 200, 200, 200, 200, 200, 401),
    ("GET", "/v2/info/stores/detail"): (403, 403, 403, 403, 403, 200, 401),
    ("GET", "/v2/info/usage"): (200, 200, 200, 200, 200, 200, 401),
    ("GET", "/v2/images/{image_id}/tasks"): (200, 200, 404, 200, 200, 200, 401),
    ("PUT", "/v2/images/{image_id}/stage"): (204, 403, 404, 403, 403, 204, 401),
    # The image is active, not staged: those allowed to import learn it is too late (409).
    ("POST", "/v2/images/{image_id}/import"): (409, 403, 404, 403, 403, 409, 401),
    # The image's only copy can never be removed this way, not even by an admin.
    ("DELETE", "/v2/stores/{store_id}/{image_id}"): (403, 403, 404, 403, 403, 403, 401),
    ("GET", "/v2/images/{image_id}/locations"): (403, 403, 404, 403, 403, 200, 401),
    # The image is active: those allowed to add a location learn it is too late (409).
    ("POST", "/v2/images/{image_id}/locations"): (409, 403, 404, 403, 403, 409, 401),
    # The cache API is admin-only; without image_cache_dir the admin learns it is off (404).
    ("GET", "/v2/cache"): (403, 403, 403, 403, 403, 404, 401),
    ("DELETE", "/v2/cache"): (403, 403, 403, 403, 403, 404, 401),
    ("POST", "/v2/cache/clean"): (403, 403, 403, 403, 403, 404, 401),
    ("POST", "/v2/cache/prune"): (403, 403, 403, 403, 403, 404, 401),
    ("GET", "/v2/cache/nodes"): (403, 403, 403, 403, 403, 404, 401),
    ("GET", "/v2/cache/nodes/{image_id}"): (403, 403, 403, 403, 403, 404, 401),
    ("PUT", "/v2/cache/{image_id}"): (403, 403, 404, 403, 403, 404, 401),
    ("DELETE", "/v2/cache/{image_id}"): (403, 403, 404, 403, 403, 404, 401),
}

# The routes on one image, when that image is public instead of shared.
PUBLIC_EXPECTED: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    ("GET", "/v2/images/{image_id}"): (200, 200, 200, 200, 200, 200, 401),
    ("PATCH", "/v2/images/{image_id}"): (200, 403, 403, 403, 403, 200, 401),
    ("DELETE", "/v2/images/{image_id}"): (204, 403, 403, 403, 403, 204, 401),
    ("PUT", "/v2/images/{image_id}/file"): (204, 403, 403, 403, 403, 204, 401),
    ("GET", "/v2/images/{image_id}/file"): (200, 403, 200, 200, 200, 200, 401),
    ("POST", "/v2/images/{image_id}/actions/deactivate"): (204, 403, 403, 403, 403, 204, 401),
    ("POST", "/v2/images/{image_id}/actions/reactivate"): (204, 403, 403, 403, 403, 204, 401),
    ("PUT", "/v2/images/{image_id}/tags/{tag}"): (204, 403, 403, 403, 403, 204, 401),
    ("DELETE", "/v2/images/{image_id}/tags/{tag}"): (204, 403, 403, 403, 403, 204, 401),
    # Only shared images have members: 403, and 404 for the read of one member.
    ("GET", "/v2/images/{image_id}/members"): (403, 403, 403, 403, 403, 403, 401),
    ("POST", "/v2/images/{image_id}/members"): (403, 403, 403, 403, 403, 403, 401),
    ("GET", "/v2/images/{image_id}/members/{member_id}"): (404, 404, 404, 404, 404, 404, 401),
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): (403, 403, 403, 403, 403, 403, 401),
    ("DELETE", "/v2/images/{image_id}/members/{member_id}"): (
        403,
        403,
        403,
        403,
        403,
        403,
        401,
    ),
    ("DELETE", "/v2/stores/{store_id}/{image_id}"): (403, 403, 403, 403, 403, 403, 401),
    ("GET", "/v2/images/{image_id}/locations"): (403, 403, 403, 403, 403, 200, 401),
    ("POST", "/v2/images/{image_id}/locations"): (409, 403, 403, 403, 403, 409, 401),
    ("GET", "/v2/images/{image_id}/tasks"): (200, 200, 200, 200, 200, 200, 401),
    ("PUT", "/v2/images/{image_id}/stage"): (204, 403, 403, 403, 403, 204, 401),
    ("POST", "/v2/images/{image_id}/import"): (409, 403, 403, 403, 403, 409, 401),
    ("GET", "/v2/cache/nodes/{image_id}"): (403, 403, 403, 403, 403, 404, 401),
    ("PUT", "/v2/cache/{image_id}"): (403, 403, 403, 403, 403, 404, 401),
    ("DELETE", "/v2/cache/{image_id}"): (403, 403, 403, 403, 403, 404, 401),
}

# What each request sends besides the persona's identity.
BODIES: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("POST", "/v2/images"): {"json": {"name": "new"}},
    ("PATCH", "/v2/images/{image_id}"): {
        "json": [{"op": "replace", "path": "/name", "value": "renamed"}],
        "headers": {"Content-Type": PATCH_TYPE},
    },
    ("PUT", "/v2/images/{image_id}/file"): {
        "content": b"data",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("POST", "/v2/images/{image_id}/members"): {"json": {"member": "newcomer"}},
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): {"json": {"status": "accepted"}},
    ("POST", "/v2/images/{image_id}/locations"): {"json": {"url": "http://203.0.113.9/x"}},
    ("PUT", "/v2/images/{image_id}/stage"): {
        "content": b"staged",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("POST", "/v2/images/{image_id}/import"): {"json": {"method": {"name": "glance-direct"}}},
    ("POST", "/v2/tasks"): {
        "json": {
            "type": "import",
            "input": {
                # A global address (documentation ranges are not); no worker fetches it here.
                "import_from": "http://93.184.215.14/x.img",
                "import_from_format": "raw",
                "image_properties": {"disk_format": "raw", "container_format": "bare"},
            },
        }
    },
}
# Routes that need an image without data (queued).
TAKES_DATA: Final = ("/file", "/stage")
MISSING_TASK: Final = "8a1b7b1e-0000-4000-8000-000000000000"
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


def test_every_route_has_an_expectation(make_settings: Any) -> None:
    routes = app_routes(create_app(make_settings(**MULTISTORE)))
    # The metadata definitions routes have a matrix of their own (test_metadef_isolation.py).
    expected = set(EXPECTED) | set(METADEF_EXPECTED)
    assert not set(EXPECTED) & set(METADEF_EXPECTED)
    assert routes - expected == set(), "add these routes to EXPECTED"
    assert expected - routes == set(), "these routes are gone"
    assert all(len(statuses) == len(PERSONAS) for statuses in EXPECTED.values())
    assert all(len(statuses) == len(PERSONAS) for statuses in METADEF_EXPECTED.values())


async def _shared_image(client: httpx.AsyncClient, *, with_data: bool = True) -> str:
    image_id = await _image(client, OWNER, {}, with_data=with_data)
    for member in ("friend", "pal"):
        added = await client.post(
            f"/v2/images/{image_id}/members", json={"member": member}, headers=OWNER
        )
        assert added.status_code == 200
    accepted = await client.put(
        f"/v2/images/{image_id}/members/pal", json={"status": "accepted"}, headers=PAL_ACCEPTED
    )
    assert accepted.status_code == 200
    return image_id


async def _public_image(client: httpx.AsyncClient, *, with_data: bool = True) -> str:
    return await _image(
        client, ADMIN, {"visibility": "public", "owner": "owner"}, with_data=with_data
    )


async def _image(
    client: httpx.AsyncClient,
    creator: dict[str, str],
    fields: dict[str, str],
    *,
    with_data: bool,
) -> str:
    created = await client.post(
        "/v2/images",
        json={"disk_format": "raw", "container_format": "bare", "tags": ["t"], **fields},
        headers=creator,
    )
    assert created.status_code == 201
    image_id: str = created.json()["id"]
    if with_data:
        upload = await client.put(
            f"/v2/images/{image_id}/file",
            content=b"matrix data",
            headers={**OWNER, "Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 204
    return image_id


async def _matrix(
    client: httpx.AsyncClient,
    routes: Iterable[tuple[str, str]],
    scenario: Callable[..., Awaitable[str]],
) -> dict[tuple[str, str], tuple[int, ...]]:
    image = await scenario(client)
    actual: dict[tuple[str, str], tuple[int, ...]] = {}
    for method, path in sorted(routes):
        extra = BODIES.get((method, path), {})
        statuses = []
        for headers in PERSONAS.values():
            image_id = image
            if "{image_id}" in path and method not in SAFE_METHODS:
                # A fresh image, so one persona's change does not decide the next one's answer.
                image_id = await scenario(client, with_data=not path.endswith(TAKES_DATA))
            url = path.format(
                image_id=image_id,
                tag="t",
                member_id="friend",
                store_id="file",
                task_id=MISSING_TASK,
            )
            response = await client.request(
                method,
                url,
                json=extra.get("json"),
                content=extra.get("content"),
                headers={**headers, **extra.get("headers", {})},
            )
            statuses.append(response.status_code)
        actual[method, path] = tuple(statuses)
    return actual


async def test_isolation_matrix_shared_image(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for, **MULTISTORE)
    assert await _matrix(client, EXPECTED, _shared_image) == EXPECTED


async def test_isolation_matrix_public_image(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for, **MULTISTORE)
    image_routes = {route for route in EXPECTED if "{image_id}" in route[1]}
    assert set(PUBLIC_EXPECTED) == image_routes
    assert await _matrix(client, image_routes, _public_image) == PUBLIC_EXPECTED
