"""auth_strategy: noauth (embedded default, loopback only) and trusted-proxy headers (from the
proxy's addresses only)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from glimpse.config import ConfigError, Settings
from glimpse.context import RequestContext
from glimpse.domain.errors import InvalidInput, NotAuthenticated
from glimpse.logs import LOG_FORMAT, ContextFilter
from glimpse_api.app import create_app
from glimpse_api.identity import TrustedProxy

PROJECT_A = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u1",
    "X-Project-Id": "pa",
    "X-Roles": "member,reader",
}
PROJECT_B = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "u2",
    "X-Tenant-Id": "pb",
    # Keystone sends implied roles too: member implies reader.
    "X-Roles": "member,reader",
}
ADMIN = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "root",
    "X-Project-Id": "ops",
    "X-Roles": "admin",
}


async def proxy_client(make_settings: Any, client_for: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(make_settings(auth_strategy="trusted-proxy"))
    return client


async def test_trusted_proxy_requires_confirmed_identity(
    make_settings: Any,
    client_for: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    response = await client.get("/v2/images")
    assert response.status_code == 401
    assert "x-openstack-request-id" in response.headers
    invalid = await client.get("/v2/images", headers={**PROJECT_A, "X-Identity-Status": "Invalid"})
    assert invalid.status_code == 401
    # Version discovery needs no identity.
    assert (await client.get("/versions")).status_code == 200


async def test_owner_comes_from_the_project_header(
    make_settings: Any,
    client_for: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    response = await client.post("/v2/images", json={"name": "a"}, headers=PROJECT_A)
    assert response.status_code == 201
    assert response.json()["owner"] == "pa"
    response = await client.post("/v2/images", json={"name": "b"}, headers=PROJECT_B)
    assert response.json()["owner"] == "pb"


@pytest.mark.parametrize("header", ["X-Project-Id", "X-Tenant-Id", "X-User-Id"])
async def test_identity_ids_longer_than_their_columns_are_refused(
    make_settings: Any, client_for: Any, header: str
) -> None:
    client = await proxy_client(make_settings, client_for)
    identity = {k: v for k, v in PROJECT_A.items() if k != "X-Project-Id"} | {"X-Tenant-Id": "pa"}
    longest = {**identity, header: "p" * 255}
    created = await client.post("/v2/images", json={"name": "a"}, headers=longest)
    assert created.status_code == 201, created.text
    if header != "X-User-Id":
        assert created.json()["owner"] == "p" * 255
    # One character more than the owner and user columns hold: the caller's error, not a 500.
    response = await client.post(
        "/v2/images", json={"name": "b"}, headers={**longest, header: "p" * 256}
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": f"{header} is longer than 255 characters",
        "code": "400 Bad Request",
        "title": "Bad Request",
    }
    listed = await client.get("/v2/images", headers=longest)
    assert [image["name"] for image in listed.json()["images"]] == ["a"]
    # Even the X-Tenant-Id that an X-Project-Id makes unused: the proxy is broken either way.
    unused = {**PROJECT_A, "X-Tenant-Id": "p" * 256}
    assert (await client.get("/v2/images", headers=unused)).status_code == 400


async def test_other_projects_private_images_are_invisible(
    make_settings: Any,
    client_for: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    image = (await client.post("/v2/images", json={"name": "mine"}, headers=PROJECT_A)).json()
    url = f"/v2/images/{image['id']}"
    assert (await client.get(url, headers=PROJECT_B)).status_code == 404
    assert (await client.delete(url, headers=PROJECT_B)).status_code == 404
    assert (
        await client.put(
            f"{url}/file",
            content=b"x",
            headers={**PROJECT_B, "Content-Type": "application/octet-stream"},
        )
    ).status_code == 404
    listed = (await client.get("/v2/images", headers=PROJECT_B)).json()["images"]
    assert listed == []
    assert [
        i["name"] for i in (await client.get("/v2/images", headers=PROJECT_A)).json()["images"]
    ] == ["mine"]
    assert (await client.get(url, headers=ADMIN)).status_code == 200


async def test_public_images_are_read_only_for_others(
    make_settings: Any,
    client_for: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    denied = await client.post("/v2/images", json={"visibility": "public"}, headers=PROJECT_A)
    assert denied.status_code == 403
    image = (
        await client.post("/v2/images", json={"visibility": "public", "name": "pub"}, headers=ADMIN)
    ).json()
    url = f"/v2/images/{image['id']}"
    assert (await client.get(url, headers=PROJECT_B)).status_code == 200
    assert (await client.delete(url, headers=PROJECT_B)).status_code == 403
    patch = await client.patch(
        url,
        json=[{"op": "replace", "path": "/name", "value": "x"}],
        headers={**PROJECT_B, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert patch.status_code == 403
    assert [
        i["name"] for i in (await client.get("/v2/images", headers=PROJECT_B)).json()["images"]
    ] == ["pub"]


async def test_only_admins_set_another_owner(
    make_settings: Any,
    client_for: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    denied = await client.post("/v2/images", json={"owner": "pb"}, headers=PROJECT_A)
    assert denied.status_code == 403
    allowed = await client.post("/v2/images", json={"owner": "pb"}, headers=ADMIN)
    assert allowed.status_code == 201
    assert allowed.json()["owner"] == "pb"


async def test_log_lines_carry_request_user_and_project(
    make_settings: Any,
    client_for: Any,
    caplog: Any,
) -> None:
    client = await proxy_client(make_settings, client_for)
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.DEBUG, logger="glimpse_api"):
        response = await client.get("/v2/images", headers=PROJECT_A)
    request_id = response.headers["x-openstack-request-id"]
    mine = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert mine
    assert f"[{request_id} u1 pa]" in logging.Formatter(LOG_FORMAT).format(mine[-1])
    # Outside a request the fields are placeholders.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    ContextFilter().filter(record)
    assert (record.request_id, record.user_id, record.project_id) == ("-", "-", "-")


@contextlib.asynccontextmanager
async def peer_client(
    settings: Settings, peer: str, base_url: str = "http://glimpse.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests reach the app from `peer` (and at `base_url`'s host)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(peer, 40000)),
            base_url=base_url,
            headers={"Accept": "application/json"},
        ) as client,
    ):
        yield client


async def test_identity_headers_count_only_from_trusted_proxies(
    make_settings: Any,
    database: Any,  # noqa: ARG001 -- the schema the app needs
) -> None:
    settings = make_settings(
        auth_strategy="trusted-proxy", trusted_proxies="[10.0.0.0/24, 192.0.2.7]"
    )
    for peer, status in (
        ("10.0.0.9", 201),
        ("192.0.2.7", 201),
        ("::ffff:10.0.0.9", 201),  # the same address, as a dual-stack socket reports it
        ("10.0.1.9", 401),
        ("127.0.0.1", 401),  # loopback is trusted by default only
        ("192.0.2.8", 401),
    ):
        async with peer_client(settings, peer) as client:
            response = await client.post("/v2/images", json={"name": "p"}, headers=ADMIN)
        assert response.status_code == status, peer
        if status == 401:
            assert response.json() == {
                "message": "Authentication required",
                "code": "401 Unauthorized",
                "title": "Unauthorized",
            }


def test_trusted_proxies_takes_glance_list_notation(make_settings: Any) -> None:
    assert [str(n) for n in make_settings().trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    settings = make_settings(trusted_proxies="[10.1.0.0/16, 'fd00::/8', 192.0.2.1]")
    assert [str(n) for n in settings.trusted_proxies] == [
        "10.1.0.0/16",
        "fd00::/8",
        "192.0.2.1/32",
    ]
    with pytest.raises(ConfigError, match=r"\[DEFAULT\] trusted_proxies"):
        make_settings(trusted_proxies="10.1.2.3/16")  # host bits set: a typo, not a network


async def test_noauth_answers_only_on_loopback(
    make_settings: Any,
    database: Any,  # noqa: ARG001 -- the schema the app needs
) -> None:
    """uvicorn started by hand on a public address: the app refuses what arrives there."""
    settings = make_settings()
    async with peer_client(settings, "192.0.2.50", "http://192.0.2.10:9292") as client:
        refused = await client.get("/v2/images")
    assert refused.status_code == 403
    assert "loopback" in refused.json()["message"]
    async with peer_client(settings, "127.0.0.1", "http://127.0.0.1:9292") as client:
        assert (await client.get("/v2/images")).status_code == 200
    allowed = make_settings(noauth_allow_public_bind=True)
    async with peer_client(allowed, "192.0.2.50", "http://192.0.2.10:9292") as client:
        assert (await client.get("/v2/images")).status_code == 200


def test_create_app_refuses_noauth_on_a_public_address(make_settings: Any) -> None:
    public = "0.0.0.0"  # noqa: S104 -- the address being refused; nothing binds it here
    with pytest.raises(ConfigError, match=r"noauth refuses to listen on 0\.0\.0\.0"):
        create_app(make_settings(bind_host=public))
    assert create_app(make_settings(bind_host=public, noauth_allow_public_bind=True))


def _proxied(headers: dict[str, str]) -> Request:
    raw = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
    return Request({"type": "http", "headers": raw, "client": ("127.0.0.1", 40000)})


async def test_a_remembered_identity_is_each_request_own() -> None:
    """The proxy's identity is worked out once per set of headers; the request id and the
    forwarded token stay each request's, and other headers name another caller."""
    proxy = TrustedProxy([ipaddress.ip_network("127.0.0.1/32")])
    first = await proxy.authenticate(_proxied({**PROJECT_A, "X-Auth-Token": "t1"}), "req-1")
    again = await proxy.authenticate(_proxied(PROJECT_A), "req-2")
    assert (first.project_id, first.user_id, first.roles) == (
        "pa",
        "u1",
        frozenset({"member", "reader"}),
    )
    assert (first.request_id, first.auth_token) == ("req-1", "t1")
    assert again == RequestContext(
        project_id="pa", user_id="u1", roles=frozenset({"member", "reader"}), request_id="req-2"
    )
    assert again.auth_token is None
    other = await proxy.authenticate(_proxied({**PROJECT_A, "X-Roles": "admin"}), "req-3")
    assert (other.roles, other.is_admin) == (frozenset({"admin"}), True)
    # A refusal is never remembered as an identity.
    with pytest.raises(NotAuthenticated):
        await proxy.authenticate(_proxied({**PROJECT_A, "X-Identity-Status": "Invalid"}), "r")
    with pytest.raises(InvalidInput):
        await proxy.authenticate(_proxied({**PROJECT_A, "X-User-Id": "u" * 256}), "r")
