"""auth_strategy = keystone against a real Keystone: tokens, cache, revocation, service tokens."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from keystone_server import KeystoneEnv, User, free_port, password_auth

from glimpse.config import Settings
from glimpse.logs import LOG_FORMAT, ContextFilter
from glimpse_api.keystone import KeystoneAuthenticator
from glimpse_api.keystone.cache import REDIS_PREFIX, token_key
from glimpse_api.keystone.client import SERVICE_TOKEN_MARGIN, KeystoneClient
from glimpse_api.keystone.tokens import TokenInfo, parse_time

pytestmark = pytest.mark.keystone

Opener = Callable[[Settings], Any]


def authenticator_of(client: httpx.AsyncClient) -> KeystoneAuthenticator:
    transport = client._transport  # noqa: SLF001 -- the app behind the test client
    assert isinstance(transport, httpx.ASGITransport)
    authenticator = transport.app.state.runtime.authenticator  # type: ignore[attr-defined]  # app.state is untyped
    assert isinstance(authenticator, KeystoneAuthenticator)
    return authenticator


def as_user(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


async def test_token_gives_its_project_and_roles(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings())
    alice, root = keystone.token(keystone.alice), keystone.token(keystone.root)
    created = await client.post("/v2/images", json={"name": "a"}, headers=as_user(alice))
    assert created.status_code == 201
    assert created.json()["owner"] == keystone.alice.project_id
    # A member may not publish; Keystone's admin (role admin) may.
    public = {"name": "p", "visibility": "public"}
    assert (await client.post("/v2/images", json=public, headers=as_user(alice))).status_code == 403
    published = await client.post("/v2/images", json=public, headers=as_user(root))
    assert published.status_code == 201
    assert published.json()["owner"] == keystone.root.project_id


async def test_other_projects_private_images_are_invisible(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings())
    alice, rita, bob = (keystone.token(u) for u in (keystone.alice, keystone.rita, keystone.bob))
    image = (await client.post("/v2/images", json={"name": "a"}, headers=as_user(alice))).json()
    url = f"/v2/images/{image['id']}"
    assert (await client.get(url, headers=as_user(bob))).status_code == 404
    assert (await client.get("/v2/images", headers=as_user(bob))).json()["images"] == []
    # rita belongs to alice's project: the image is hers to see.
    assert (await client.get(url, headers=as_user(rita))).json()["owner"] == image["owner"]


async def test_system_and_domain_scoped_tokens_open_no_image_rule(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    """Keystone's admin holds the admin role on the system, on the `default` domain and on
    project `admin`. The image rules are project-scoped (as in Glance 33 with oslo.policy 6):
    only the project-scoped token is an admin here."""
    client = await client_for(keystone_settings())
    admin = keystone.admin
    domain_role = f"/domains/default/users/{keystone.root.id}/roles/{admin.role('admin')}"
    admin.call("PUT", domain_role)
    root = keystone.root
    system = admin.issue(password_auth(root.name, root.password, system=True))[0]
    domain_body = password_auth(root.name, root.password)
    domain_body["auth"]["scope"] = {"domain": {"id": "default"}}
    domain = admin.issue(domain_body)[0]
    project = keystone.token(root)
    public = {"name": "p", "visibility": "public"}
    published = await client.post("/v2/images", json=public, headers=as_user(project))
    assert published.status_code == 201
    url = f"/v2/images/{published.json()['id']}"
    for token in (system, domain):
        assert (await client.get("/v2/images", headers=as_user(token))).status_code == 403
        refused = await client.post("/v2/images", json=public, headers=as_user(token))
        assert refused.status_code == 403
        assert refused.json()["message"] == "You are not authorized to complete add_image action."
        assert (await client.get(url, headers=as_user(token))).status_code == 404
        assert (await client.delete(url, headers=as_user(token))).status_code == 404
    assert (await client.get(url, headers=as_user(project))).status_code == 200


async def test_missing_or_unknown_token_is_401_with_the_keystone_uri(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings())
    challenge = f'Keystone uri="{keystone.url.removesuffix("/v3")}"'
    for headers in ({}, as_user("not-a-token"), as_user("   ")):
        response = await client.get("/v2/images", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == challenge
        assert response.json() == {
            "message": "The request you have made requires authentication.",
            "code": "401 Unauthorized",
            "title": "Unauthorized",
        }
    # Version discovery needs no token.
    assert (await client.get("/versions")).status_code == 200


async def test_second_request_is_served_from_the_cache(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings())
    authenticator = authenticator_of(client)
    token = keystone.token(keystone.bob)
    before = keystone.server.validations()
    for _ in range(3):
        assert (await client.get("/v2/images", headers=as_user(token))).status_code == 200
    # Keystone's own request log saw one validation; Glimpse counted the same.
    assert keystone.server.validations() - before == 1
    assert authenticator.client.calls.validations == 1
    assert authenticator.cache.stats.memory_hits == 2


async def test_revoked_token_is_refused_once_the_cache_forgets_it(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    uncached = await client_for(keystone_settings(token_cache_time=-1))
    cached = await client_for(keystone_settings(token_cache_time=2))
    token = keystone.token(keystone.alice)
    for client in (uncached, cached):
        assert (await client.get("/v2/images", headers=as_user(token))).status_code == 200
    keystone.admin.revoke(token)
    # Without a cache Keystone's 404 for the revoked token is final at once.
    assert (await uncached.get("/v2/images", headers=as_user(token))).status_code == 401
    # As with keystonemiddleware, a cached validation outlives revocation by token_cache_time.
    assert (await cached.get("/v2/images", headers=as_user(token))).status_code == 200
    await asyncio.sleep(2.5)
    assert (await cached.get("/v2/images", headers=as_user(token))).status_code == 401
    assert authenticator_of(cached).client.calls.validations == 2


async def test_expired_token_is_refused(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings())
    token, expires_at = keystone.admin.short_lived_token(keystone.alice, seconds=8)
    assert (await client.get("/v2/images", headers=as_user(token))).status_code == 200
    remaining = (parse_time(expires_at) - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, remaining) + 1.0)
    response = await client.get("/v2/images", headers=as_user(token))
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


async def test_expiry_is_checked_on_cached_validations(
    keystone: KeystoneEnv,
    keystone_settings: Callable[..., Settings],
    client_for: Opener,
    redis_url: str,
) -> None:
    """A shared entry that outlives its token (another node's clock) must not let it in."""
    token = keystone.token(keystone.alice)  # Keystone itself would accept it
    now = datetime.now(UTC)
    stale = TokenInfo(
        user_id=keystone.alice.id,
        user_domain_id="default",
        project_id=keystone.alice.project_id,
        project_domain_id="default",
        roles=("member",),
        expires_at=now - timedelta(seconds=5),
    )
    entry = {"token": stale.to_json(), "until": (now + timedelta(minutes=5)).isoformat()}
    with redis.Redis.from_url(redis_url) as shared:
        shared.set(REDIS_PREFIX + token_key(token), json.dumps(entry), ex=300)
    client = await client_for(keystone_settings(cache_redis_url=redis_url))
    assert (await client.get("/v2/images", headers=as_user(token))).status_code == 401
    authenticator = authenticator_of(client)
    assert authenticator.cache.stats.redis_hits == 1
    assert authenticator.client.calls.validations == 0


async def test_nodes_share_validations_through_redis(
    keystone: KeystoneEnv,
    keystone_settings: Callable[..., Settings],
    client_for: Opener,
    redis_url: str,
) -> None:
    settings = keystone_settings(cache_redis_url=redis_url)
    first, second = await client_for(settings), await client_for(settings)
    token = keystone.token(keystone.bob)
    before = keystone.server.validations()
    assert (await first.get("/v2/images", headers=as_user(token))).status_code == 200
    created = await second.post("/v2/images", json={"name": "b"}, headers=as_user(token))
    assert created.status_code == 201
    assert created.json()["owner"] == keystone.bob.project_id
    assert keystone.server.validations() - before == 1
    assert authenticator_of(first).client.calls.validations == 1
    assert authenticator_of(second).client.calls.validations == 0
    assert authenticator_of(second).cache.stats.redis_hits == 1
    # Redis holds a hash of the token, never the token.
    with redis.Redis.from_url(redis_url) as shared:
        assert shared.exists(REDIS_PREFIX + token_key(token)) == 1
        assert shared.keys(f"*{token}*") == []


async def test_unreachable_redis_leaves_keystone_and_memory(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    settings = keystone_settings(cache_redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await client_for(settings)
    token = keystone.token(keystone.bob)
    for _ in range(2):
        assert (await client.get("/v2/images", headers=as_user(token))).status_code == 200
    authenticator = authenticator_of(client)
    assert authenticator.client.calls.validations == 1
    assert authenticator.cache.stats.memory_hits == 1


async def test_service_tokens(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    strict = await client_for(keystone_settings())
    lenient = await client_for(keystone_settings(service_token_roles_required=False))
    user = keystone.token(keystone.alice)
    service = keystone.token(keystone.service)  # role service
    not_a_service = keystone.token(keystone.bob)  # member, reader

    def with_service(token: str) -> dict[str, str]:
        return {"X-Auth-Token": user, "X-Service-Token": token}

    assert (await strict.get("/v2/images", headers=with_service(service))).status_code == 200
    assert (await strict.get("/v2/images", headers=with_service(not_a_service))).status_code == 401
    assert (await strict.get("/v2/images", headers=with_service("bogus"))).status_code == 401
    assert (await lenient.get("/v2/images", headers=with_service(not_a_service))).status_code == 200
    assert (await lenient.get("/v2/images", headers=with_service("bogus"))).status_code == 401
    # The user token still decides whose request it is.
    created = await strict.post("/v2/images", json={"name": "s"}, headers=with_service(service))
    assert created.json()["owner"] == keystone.alice.project_id


async def test_unreachable_keystone_is_503(
    make_settings: Callable[..., Settings], client_for: Opener
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v3"
    options = {"auth_url": closed, "username": "u", "password": "p", "project_name": "service"}
    client = await client_for(make_settings(auth_strategy="keystone", keystone_authtoken=options))
    response = await client.get("/v2/images", headers=as_user("anything"))
    assert response.status_code == 503
    assert response.json() == {
        "message": "The Keystone service is temporarily unavailable.",
        "code": "503 Service Unavailable",
        "title": "Service Unavailable",
    }


async def test_refused_service_credentials_are_503(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings(password="wrong"))
    token = keystone.token(keystone.alice)
    assert (await client.get("/v2/images", headers=as_user(token))).status_code == 503


async def test_service_reauthenticates_when_its_token_is_revoked(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client = await client_for(keystone_settings(token_cache_time=-1))
    authenticator = authenticator_of(client)
    alice = keystone.token(keystone.alice)
    assert (await client.get("/v2/images", headers=as_user(alice))).status_code == 200
    assert authenticator.client.calls.authentications == 1
    service_token = authenticator.client._service  # noqa: SLF001 -- the token to revoke
    assert service_token is not None
    keystone.admin.revoke(service_token.value)
    assert (await client.get("/v2/images", headers=as_user(alice))).status_code == 200
    assert authenticator.client.calls.authentications == 2


async def test_log_lines_carry_request_user_and_project(
    keystone: KeystoneEnv,
    keystone_settings: Callable[..., Settings],
    client_for: Opener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await client_for(keystone_settings())
    user: User = keystone.alice
    token = keystone.token(user)
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.DEBUG, logger="glimpse_api"):
        response = await client.get("/v2/images", headers=as_user(token))
    request_id = response.headers["x-openstack-request-id"]
    records = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert records, "no log line carried the request id"
    line = logging.Formatter(LOG_FORMAT).format(records[-1])
    assert f"[{request_id} {user.id} {user.project_id}]" in line


async def test_service_reauthenticates_before_its_token_expires(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings]
) -> None:
    options = keystone_settings().keystone_authtoken
    now = [datetime.now(UTC)]
    async with httpx.AsyncClient() as http:
        client = KeystoneClient(options, http, clock=lambda: now[0])
        alice = keystone.token(keystone.alice)
        assert (await client.validate(alice)).user_id == keystone.alice.id
        await client.validate(alice)
        assert client.calls.authentications == 1
        service_token = client._service  # noqa: SLF001 -- its expiry decides the renewal
        assert service_token is not None
        now[0] = service_token.expires_at - SERVICE_TOKEN_MARGIN
        assert (await client.validate(alice)).project_id == keystone.alice.project_id
        assert client.calls.authentications == 2
        assert client.calls.validations == 3
