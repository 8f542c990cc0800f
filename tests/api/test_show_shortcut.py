"""GET /v2/images/{image_id} and POST /v2/images through glimpse_api.shortcut answer byte for
byte what the plain FastAPI routes answer: the same application without the shortcut's layer
serves each request too, and status, every header and the body are compared (the request id
adopted from the request, so it is the same on both; a created image's id and times told
apart)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse_api.app import create_app
from glimpse_api.shortcut import Shortcut
from relay import relay_to
from support import free_port

OWNER = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u1",
    "X-Project-Id": "pa",
    "X-Roles": "member,reader",
}
MEMBER = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u2",
    "X-Tenant-Id": "pb",
    "X-Roles": "member,reader",
}
STRANGER = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u3",
    "X-Project-Id": "pc",
    "X-Roles": "reader",
}
ADMIN = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "root",
    "X-Project-Id": "ops",
    "X-Roles": "admin",
}
SHOW = "/v2/images/{image_id}"
ACCEPTS = ({"Accept": "application/json"}, {"Accept": "*/*"}, {})
_request_ids = (f"req-show-{n}" for n in itertools.count())


def without_shortcut(app: FastAPI) -> FastAPI:
    """`app` as it would be without the shortcut: every request goes through FastAPI's router."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not Shortcut]
    return app


class Pair:
    """Clients on the same settings and database: the application as served, and the same
    application without the shortcut."""

    def __init__(self, fast: httpx.AsyncClient, plain: httpx.AsyncClient) -> None:
        self.fast = fast
        self.plain = plain

    async def same(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """The fast answer, after checking the plain one is identical."""
        sent = {"X-Openstack-Request-Id": next(_request_ids), **(headers or {})}
        fast = await self.fast.request(method, path, headers=sent, content=content)
        plain = await self.plain.request(method, path, headers=sent, content=content)
        assert fast.status_code == plain.status_code, (fast.text, plain.text)
        assert fast.headers.raw == plain.headers.raw
        assert fast.content == plain.content
        assert fast.headers["x-openstack-request-id"] == sent["X-Openstack-Request-Id"]
        return fast


@pytest.fixture
async def pair_for(
    database: Database,  # noqa: ARG001 -- requested so the schema exists before the apps start
) -> AsyncIterator[Callable[[Settings], Any]]:
    async with AsyncExitStack() as stack:

        async def open_pair(settings: Settings) -> Pair:
            clients = []
            for app in (create_app(settings), without_shortcut(create_app(settings))):
                await stack.enter_async_context(app.router.lifespan_context(app))
                client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://glimpse.test"
                )
                clients.append(await stack.enter_async_context(client))
            return Pair(*clients)

        yield open_pair


async def new_image(
    pair: Pair, headers: dict[str, str], visibility: str = "private", **extra: Any
) -> str:
    body = {"disk_format": "raw", "container_format": "bare", "visibility": visibility, **extra}
    created = await pair.fast.post("/v2/images", json=body, headers=headers)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


@pytest.fixture
async def proxied(pair_for: Callable[[Settings], Any], make_settings: Any) -> Pair:
    pair: Pair = await pair_for(make_settings(auth_strategy="trusted-proxy"))
    return pair


def test_the_shortcut_is_in_the_served_application(settings: Settings) -> None:
    assert any(m.cls is Shortcut for m in create_app(settings).user_middleware)


async def test_owner_member_admin_and_others_see_what_the_route_shows(proxied: Pair) -> None:
    private = await new_image(
        proxied, OWNER, name="private", tags=["a", "b"], os_distro="debian", extra="é"
    )
    shared = await new_image(proxied, OWNER, "shared", name="shared")
    hidden = await new_image(proxied, ADMIN, "public", name="hidden", os_hidden=True)
    community = await new_image(proxied, OWNER, "community")
    added = await proxied.fast.post(
        f"/v2/images/{shared}/members", json={"member": "pb"}, headers=OWNER
    )
    assert added.status_code == 200, added.text

    shown = await proxied.same("GET", f"/v2/images/{private}", OWNER)
    assert shown.status_code == 200
    assert shown.json()["tags"] == ["a", "b"]
    assert shown.json()["extra"] == "é"
    assert (await proxied.same("GET", f"/v2/images/{private}", ADMIN)).status_code == 200
    for accept in ACCEPTS:
        # Another project's private image does not exist for it, in every error format.
        hidden_from = await proxied.same("GET", f"/v2/images/{private}", {**MEMBER, **accept})
        assert hidden_from.status_code == 404
    # A member sees a shared image whatever its answer; a stranger does not.
    assert (await proxied.same("GET", f"/v2/images/{shared}", MEMBER)).status_code == 200
    assert (await proxied.same("GET", f"/v2/images/{shared}", STRANGER)).status_code == 404
    assert (await proxied.same("GET", f"/v2/images/{hidden}", STRANGER)).json()["os_hidden"]
    assert (await proxied.same("GET", f"/v2/images/{community}", STRANGER)).status_code == 200
    assert (await proxied.same("GET", "/v2/images/no-such-image", ADMIN)).status_code == 404


async def test_paths_and_methods_around_the_show(proxied: Pair) -> None:
    image_id = await new_image(proxied, OWNER)
    # The minor version in the path, a query string (ignored), another method, a trailing
    # slash, a NUL, sub-resources: each answered as the router answers it.
    assert (await proxied.same("GET", f"/v2.9/images/{image_id}", OWNER)).status_code == 200
    assert (await proxied.same("GET", f"/v2/images/{image_id}?x=1", OWNER)).status_code == 200
    assert (await proxied.same("HEAD", f"/v2/images/{image_id}", OWNER)).status_code == 405
    assert (await proxied.same("GET", "/v2/images/", OWNER)).status_code == 404
    assert (await proxied.same("GET", "/v2/images/a%00b", OWNER)).status_code == 404
    members = await proxied.same("GET", f"/v2/images/{image_id}/members", OWNER)
    assert members.status_code == 403  # a private image has no members, as in Glance


async def test_identity_refusals_are_the_routes(proxied: Pair) -> None:
    image_id = await new_image(proxied, OWNER)
    path = f"/v2/images/{image_id}"
    for accept in ACCEPTS:
        absent = await proxied.same("GET", path, accept)
        assert absent.status_code == 401
        assert absent.headers["www-authenticate"] == 'Keystone uri=""'
        invalid = {**OWNER, "X-Identity-Status": "Invalid", **accept}
        assert (await proxied.same("GET", path, invalid)).status_code == 401
        too_long = {**OWNER, "X-Project-Id": "p" * 256, **accept}
        assert (await proxied.same("GET", path, too_long)).status_code == 400


async def test_request_ids_are_made_and_echoed_as_by_the_route(proxied: Pair) -> None:
    image_id = await new_image(proxied, OWNER)
    fast = await proxied.fast.get(f"/v2/images/{image_id}", headers=OWNER)
    plain = await proxied.plain.get(f"/v2/images/{image_id}", headers=OWNER)
    made = fast.headers["x-openstack-request-id"]
    assert made.startswith("req-")
    assert made != plain.headers["x-openstack-request-id"]
    assert fast.content == plain.content
    assert [k for k, _ in fast.headers.raw] == [k for k, _ in plain.headers.raw]


async def test_keystone_refusals_are_the_routes(
    pair_for: Callable[[Settings], Any], make_settings: Any
) -> None:
    # No Keystone answers here: a request without a token is refused before it is asked, and
    # one with a token finds it unavailable.
    closed = f"http://127.0.0.1:{free_port()}/v3"
    options = {"auth_url": closed, "username": "u", "password": "p", "project_name": "service"}
    settings = make_settings(auth_strategy="keystone", keystone_authtoken=options)
    pair: Pair = await pair_for(settings)
    for accept in ACCEPTS:
        refused = await pair.same("GET", "/v2/images/x", accept)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Keystone uri=")
        unavailable = await pair.same("GET", "/v2/images/x", {"X-Auth-Token": "t", **accept})
        assert unavailable.status_code == 503


async def test_noauth_shows_as_the_route(
    pair_for: Callable[[Settings], Any], settings: Settings
) -> None:
    pair: Pair = await pair_for(settings)
    image_id = await new_image(pair, {})
    assert (await pair.same("GET", f"/v2/images/{image_id}")).status_code == 200


async def test_the_show_is_counted_by_its_route_template(proxied: Pair) -> None:
    image_id = await new_image(proxied, OWNER)
    labels = f'method="GET",route="{SHOW}",status="200"'

    async def count() -> float:
        text = (await proxied.fast.get("/metrics")).text
        lines = [line for line in text.splitlines() if line.startswith("glimpse_api_requests")]
        found = [line for line in lines if labels in line and "_total" in line]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    before = await count()
    for _ in range(3):
        assert (await proxied.fast.get(f"/v2/images/{image_id}", headers=OWNER)).is_success
    assert await count() == before + 3


async def test_the_document_keeps_the_shows_answers(proxied: Pair) -> None:
    document = (await proxied.fast.get("/openapi.json")).json()
    assert document == (await proxied.plain.get("/openapi.json")).json()
    show = document["paths"][SHOW]["get"]
    assert {"200", "400", "401", "404", "503"} <= set(show["responses"])
    assert show["security"] == [{"identityStatus": []}]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_lost_database_is_the_routes_503(
    pair_for: Callable[[Settings], Any], make_settings: Any, database_url: str
) -> None:
    host, port = database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    with relay_to(host, int(port)) as relay:
        through = database_url.replace(f"@{host}:{port}/", f"@{relay.address}/", 1)
        database = {"connection": through, "command_timeout": 2, "pool_timeout": 2}
        pair: Pair = await pair_for(make_settings(auth_strategy="trusted-proxy", database=database))
        image_id = await new_image(pair, OWNER)
        relay.down()
        for accept in ACCEPTS:
            lost = await pair.same("GET", f"/v2/images/{image_id}", {**OWNER, **accept})
            assert lost.status_code == 503
            assert lost.headers["retry-after"] == "10"


JSON = {"Content-Type": "application/json"}


async def test_a_create_answers_as_the_route(proxied: Pair) -> None:
    """The same body, but for its id, created through each: the same answer, but for the id
    (and the times, should a second pass between the two)."""
    body = {
        "name": "new",
        "disk_format": "raw",
        "container_format": "bare",
        "os_distro": "ubuntu",
        "hw_disk_bus": "virtio",
        "tags": ["z", "a"],
        "extra": "é",
    }
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    sent = {"X-Openstack-Request-Id": next(_request_ids), **OWNER, **JSON}
    answers = [
        await client.post("/v2/images", content=json.dumps({**body, "id": image_id}), headers=sent)
        for client, image_id in zip((proxied.fast, proxied.plain), ids, strict=True)
    ]
    fast, plain = answers
    assert fast.status_code == plain.status_code == 201, (fast.text, plain.text)
    plain_raw = [(k, v.replace(ids[1].encode(), ids[0].encode())) for k, v in plain.headers.raw]
    assert fast.headers.raw == plain_raw
    shown = [answer.json() for answer in answers]
    for view in shown:
        view.pop("created_at")
        view.pop("updated_at")
    assert shown[0] == {
        **shown[1],
        "id": ids[0],
        "self": f"/v2/images/{ids[0]}",
        "file": f"/v2/images/{ids[0]}/file",
    }
    assert list(fast.json()) == list(plain.json())  # the keys in the same order


async def test_create_refusals_are_the_routes(proxied: Pair) -> None:
    taken = await new_image(proxied, OWNER)
    cases = [
        (OWNER, json.dumps({"id": taken}).encode(), 409),
        (OWNER, b"{not json", 400),
        (OWNER, b"[1]", 400),
        (OWNER, json.dumps({"visibility": "public"}).encode(), 403),
        (OWNER, json.dumps({"min_ram": -1}).encode(), 400),
        (STRANGER, b"{}", 403),
        ({}, b"{}", 401),
    ]
    for accept in ACCEPTS:
        for identity, content, status in cases:
            headers = {**identity, **JSON, **accept}
            answer = await proxied.same("POST", "/v2/images", headers, content)
            assert answer.status_code == status, answer.text
    # Around the create: another method on its path, and its path with a trailing slash.
    assert (await proxied.same("PUT", "/v2/images", OWNER, b"{}")).status_code == 405
    assert (await proxied.same("POST", "/v2/images/", OWNER, b"{}")).status_code in (404, 405)
