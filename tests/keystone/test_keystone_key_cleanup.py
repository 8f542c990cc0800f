"""Key cleanup against a real Keystone and the Barbican double: the deleting user's token (also
as a trusted proxy forwards it), the trust that outlives it, never the service's own token,
outages and restores.

The double asks Keystone (GET /v3/auth/tokens) which user, roles and project each token it
receives stands for, and whether through a trust, while the call is in flight, and applies
Barbican's default policy to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from keystone_server import ADMIN_PASSWORD, KeystoneEnv, User, password_auth

from barbican_double import BarbicanDouble, TokenScope, running_barbican
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import ImageKeyCleanup, utcnow
from glimpse_scrubber.jobs import ScrubberRuntime
from glimpse_scrubber.main import run_pass

pytestmark = pytest.mark.keystone

OCTET = {"Content-Type": "application/octet-stream"}
KEY = "cinder_encryption_key_id"
POLICY = "cinder_encryption_key_deletion_policy"
TOKEN_KEY = Fernet.generate_key().decode()


class TokenScopes:
    """What Keystone says about each token the double received."""

    def __init__(self, keystone: KeystoneEnv) -> None:
        self.url = keystone.url
        self.admin_token = keystone.admin.issue(
            password_auth("admin", ADMIN_PASSWORD, system=True)
        )[0]
        self.seen: dict[str, dict[str, Any]] = {}

    def scope_of(self, token: str) -> TokenScope | None:
        response = httpx.get(
            f"{self.url}/auth/tokens",
            headers={"X-Auth-Token": self.admin_token, "X-Subject-Token": token},
            timeout=30,
        )
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()["token"]
        self.seen[token] = body
        return TokenScope(
            user_id=str(body["user"]["id"]),
            project_id=(body.get("project") or {}).get("id"),
            roles=frozenset(str(role["name"]).lower() for role in body.get("roles", [])),
            system=bool(body.get("system")),
            domain_id=(body.get("domain") or {}).get("id"),
        )


@pytest.fixture
def scopes(keystone: KeystoneEnv) -> TokenScopes:
    return TokenScopes(keystone)


@pytest.fixture
def barbican(scopes: TokenScopes) -> Iterator[BarbicanDouble]:
    with running_barbican(scopes.scope_of) as double:
        yield double


@pytest.fixture
def settings_for(
    make_settings: Callable[..., Settings], keystone: KeystoneEnv, barbican: BarbicanDouble
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("auth_strategy", "keystone")
        settings: Settings = make_settings(
            keystone_authtoken={
                "auth_url": keystone.url,
                "username": keystone.service.name,
                "password": keystone.service.password,
                "project_name": keystone.service.project,
            },
            barbican={"barbican_endpoint": barbican.url},
            key_manager={"token_encryption_key": TOKEN_KEY, "cleanup_retry_initial": 60},
            **overrides,
        )
        return settings

    return make


@dataclass
class Rig:
    keystone: KeystoneEnv
    settings_for: Callable[..., Settings]
    client_for: Any
    barbican: BarbicanDouble
    scopes: TokenScopes
    database: Database


@pytest.fixture
def rig(
    *,
    keystone: KeystoneEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    barbican: BarbicanDouble,
    scopes: TokenScopes,
    database: Database,
) -> Rig:
    return Rig(keystone, settings_for, client_for, barbican, scopes, database)


def as_user(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


async def encrypted_image(
    client: httpx.AsyncClient, token: str, key_id: str, policy: str | None
) -> str:
    body: dict[str, Any] = {"disk_format": "raw", "container_format": "bare", KEY: key_id}
    if policy is not None:
        body[POLICY] = policy
    created = await client.post("/v2/images", json=body, headers=as_user(token))
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    headers = {**OCTET, **as_user(token)}
    response = await client.put(f"/v2/images/{image_id}/file", content=b"disk", headers=headers)
    assert response.status_code == 204
    return image_id


async def cleanup_of(database: Database, image_id: str) -> ImageKeyCleanup:
    async with database.read() as session:
        statement = sa.select(ImageKeyCleanup).where(ImageKeyCleanup.image_id == image_id)  # type: ignore[arg-type]  # SQLModel column
        return (await session.execute(statement)).scalar_one()


async def make_due(database: Database) -> None:
    async with database.write() as session:
        await session.execute(
            sa.update(ImageKeyCleanup).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


async def scrubber_pass(settings: Settings) -> None:
    runtime = ScrubberRuntime.build(settings)
    try:
        await run_pass(runtime)
    finally:
        await runtime.aclose()


def trust_exists(scopes: TokenScopes, trust_id: str) -> bool:
    response = httpx.get(
        f"{scopes.url}/OS-TRUST/trusts/{trust_id}",
        headers={"X-Auth-Token": scopes.admin_token},
        timeout=30,
    )
    return response.status_code == 200


async def test_each_policy_with_the_users_token(rig: Rig) -> None:
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, database = rig.barbican, rig.database
    client = await client_for(settings_for())
    alice = keystone.token(keystone.alice)
    alpha = keystone.alice.project_id
    images = {}
    for policy in ("on_image_deletion", "do_not_delete", None):
        key_id = barbican.add_secret(f"key-{policy}", alpha)
        images[policy] = await encrypted_image(client, alice, key_id, policy)
    for image_id in images.values():
        deleted = await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
        assert deleted.status_code == 204

    # Deleted right after the delete, with alice's own token, in her project.
    (call,) = barbican.calls
    assert (call.method, call.path) == ("DELETE", "/v1/secrets/key-on_image_deletion")
    assert (call.token, call.project_id) == (alice, alpha)
    row = await cleanup_of(database, images["on_image_deletion"])
    assert (row.status, row.user_token, row.token_expires_at, row.trust_id) == (
        "done",
        None,
        None,
        None,
    )
    await scrubber_pass(settings_for())
    assert len(barbican.calls) == 1
    assert set(barbican.secrets) == {"key-do_not_delete", "key-None"}


async def test_delayed_delete_uses_a_trust_once_the_token_is_gone(rig: Rig) -> None:
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, scopes, database = rig.barbican, rig.scopes, rig.database
    delayed = settings_for(delayed_delete=True, scrub_time=3600)
    client = await client_for(delayed)
    alice = keystone.token(keystone.alice)
    alpha = keystone.alice.project_id
    key_id = barbican.add_secret("key-delayed", alpha)
    image_id = await encrypted_image(client, alice, key_id, "on_image_deletion")
    assert (
        await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    ).status_code == 204
    assert barbican.calls == []

    row = await cleanup_of(database, image_id)
    assert row.status == "pending"
    assert row.trust_id is not None
    trust_id = row.trust_id
    assert trust_exists(scopes, trust_id)
    # The kept token is encrypted at rest with the configured key.
    assert row.user_token is not None
    assert alice not in row.user_token
    assert Fernet(TOKEN_KEY.encode()).decrypt(row.user_token.encode()).decode() == alice

    # Inside scrub_time the image is pending_delete: the key stays.
    await scrubber_pass(delayed)
    assert barbican.calls == []

    # The token expires (here: its expiry is moved into the past); the pass drops it ...
    async with database.write() as session:
        await session.execute(
            sa.update(ImageKeyCleanup).values(token_expires_at=utcnow() - timedelta(seconds=1))
        )
    await scrubber_pass(settings_for(delayed_delete=True, scrub_time=0))

    # ... and the scrub that makes the image deleted is followed by a trust-scoped delete.
    (call,) = barbican.calls
    assert call.path == "/v1/secrets/key-delayed"
    assert call.token not in {None, alice}
    assert call.project_id == alpha
    seen = scopes.seen[call.token or ""]
    assert seen["OS-TRUST:trust"]["id"] == trust_id
    assert seen["user"]["id"] == keystone.alice.id  # impersonation: it acts as alice
    assert key_id not in barbican.secrets
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)
    assert not trust_exists(scopes, trust_id)


async def test_restore_before_the_scrub_keeps_the_key(rig: Rig) -> None:
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, scopes, database = rig.barbican, rig.scopes, rig.database
    delayed = settings_for(delayed_delete=True, scrub_time=3600)
    client = await client_for(delayed)
    alice = keystone.token(keystone.alice)
    key_id = barbican.add_secret("key-restored", keystone.alice.project_id)
    image_id = await encrypted_image(client, alice, key_id, "on_image_deletion")
    assert (
        await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    ).status_code == 204
    trust_id = (await cleanup_of(database, image_id)).trust_id
    assert trust_id is not None

    runtime = ScrubberRuntime.build(delayed)
    try:
        assert await runtime.deletion.restore(image_id) is None
    finally:
        await runtime.aclose()
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token) == ("void", None)

    # Later passes never touch the key, and delete the now useless trust.
    await make_due(database)
    await scrubber_pass(settings_for(delayed_delete=True, scrub_time=0))
    await scrubber_pass(settings_for(delayed_delete=True, scrub_time=0))
    assert barbican.calls == []
    assert key_id in barbican.secrets
    row = await cleanup_of(database, image_id)
    assert (row.status, row.trust_id) == ("void", None)
    assert not trust_exists(scopes, trust_id)
    shown = await client.get(f"/v2/images/{image_id}", headers=as_user(alice))
    assert shown.json()["status"] == "active"


async def test_barbican_outage_never_fails_the_delete_nor_loses_the_key(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Glimpse's own loggers at DEBUG (httpcore's DEBUG trace prints raw headers, as it does
    # for every client; operators do not run it in production).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="glimpse")
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, scopes, database = rig.barbican, rig.scopes, rig.database
    settings = settings_for()
    client = await client_for(settings)
    alice = keystone.token(keystone.alice)
    key_id = barbican.add_secret("key-outage", keystone.alice.project_id)
    image_id = await encrypted_image(client, alice, key_id, "on_image_deletion")

    barbican.down()  # connection refused
    assert (
        await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    ).status_code == 204
    row = await cleanup_of(database, image_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.trust_id is not None  # made for the retries, in case they outlive the token
    trust_id = row.trust_id

    barbican.up()
    barbican.status_override = 503
    await make_due(database)
    await scrubber_pass(settings)
    row = await cleanup_of(database, image_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.last_error == "Barbican answered 503"

    # Not due yet (backoff): the pass after Barbican's return waits for next_attempt_at.
    barbican.status_override = None
    await scrubber_pass(settings)
    assert key_id in barbican.secrets
    await make_due(database)
    await scrubber_pass(settings)
    assert key_id not in barbican.secrets
    assert barbican.calls[-1].project_id == keystone.alice.project_id
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)
    assert not trust_exists(scopes, trust_id)
    # Every attempt was logged, and no token (the user's, the trust's) with it.
    assert "not deleted yet (attempt 1" in caplog.text
    assert "Barbican answered 503" in caplog.text
    for call in barbican.calls:
        assert call.token
        assert call.token not in caplog.text
    assert alice not in caplog.text


async def test_a_hung_barbican_does_not_hold_the_delete(rig: Rig) -> None:
    """Barbican takes the call and never answers: the DELETE answers once the in-request
    attempt times out, and the scrubber finishes the cleanup when Barbican is back."""
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, database = rig.barbican, rig.database
    settings = settings_for()
    client = await client_for(settings)
    alice = keystone.token(keystone.alice)
    key_id = barbican.add_secret("key-hung", keystone.alice.project_id)
    image_id = await encrypted_image(client, alice, key_id, "on_image_deletion")

    barbican.answering.clear()
    deleted = await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    assert deleted.status_code == 204
    row = await cleanup_of(database, image_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "Barbican unreachable: ReadTimeout"
    assert row.trust_id is not None
    assert key_id in barbican.secrets  # the held call has not been carried out

    barbican.answering.set()
    await make_due(database)
    await scrubber_pass(settings)
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)
    assert key_id not in barbican.secrets


async def test_a_missing_secret_counts_as_deleted(rig: Rig) -> None:
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, database = rig.barbican, rig.database
    client = await client_for(settings_for())
    alice = keystone.token(keystone.alice)
    image_id = await encrypted_image(client, alice, "key-never-stored", "on_image_deletion")
    assert (
        await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    ).status_code == 204
    assert [call.path for call in barbican.calls] == ["/v1/secrets/key-never-stored"]
    assert (await cleanup_of(database, image_id)).status == "done"


def proxied(user: User, token: str | None = None) -> dict[str, str]:
    """What an authenticating proxy sets for `user` (and forwards of the user's token)."""
    headers = {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": user.id,
        "X-Project-Id": user.project_id,
        "X-Roles": "member,reader",
    }
    if token is not None:
        headers["X-Auth-Token"] = token
    return headers


async def test_the_double_decides_as_barbican_does(rig: Rig) -> None:
    """Barbican's default secret:delete, on real tokens: an admin of any project may, a member
    of the secret's project may unless it is another user's private secret, nobody else."""
    keystone, barbican = rig.keystone, rig.barbican
    alpha, beta = keystone.alice.project_id, keystone.bob.project_id
    alice, bob, rita = (
        keystone.token(user) for user in (keystone.alice, keystone.bob, keystone.rita)
    )
    service = keystone.token(keystone.service)  # admin and service in project `service`
    system = rig.scopes.admin_token  # Keystone's admin, system-scoped
    barbican.add_secret("of-alpha", alpha, creator_id=keystone.alice.id)
    barbican.add_secret("private-of-alpha", alpha, creator_id=keystone.bob.id, private=True)
    barbican.add_secret("of-beta", beta)

    def delete(token: str, secret_id: str) -> int:
        url = f"{barbican.url}/v1/secrets/{secret_id}"
        return httpx.delete(url, headers={"X-Auth-Token": token}, timeout=30).status_code

    assert delete(bob, "of-alpha") == 403  # another project's
    assert delete(rita, "of-alpha") == 403  # a reader only
    assert delete(system, "of-alpha") == 403  # not project-scoped
    assert delete(alice, "private-of-alpha") == 403  # private, and not hers
    assert delete("not-a-token", "of-alpha") == 401
    assert delete(alice, "of-alpha") == 204
    assert delete(alice, "of-alpha") == 404
    assert delete(service, "of-beta") == 204  # role admin, whatever the project
    assert set(barbican.secrets) == {"private-of-alpha"}


async def test_a_token_forwarded_by_the_proxy_deletes_the_key(rig: Rig) -> None:
    """trusted-proxy: the X-Auth-Token the proxy forwards is the user's, and deletes the key in
    the user's name, as in Glance."""
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, database = rig.barbican, rig.database
    client = await client_for(settings_for(auth_strategy="trusted-proxy"))
    alice = keystone.token(keystone.alice)
    alpha = keystone.alice.project_id
    key_id = barbican.add_secret("key-proxied", alpha, creator_id=keystone.alice.id)
    body = {"disk_format": "raw", "container_format": "bare", KEY: key_id}
    body[POLICY] = "on_image_deletion"
    # The ASGI client connects from 127.0.0.1, the default trusted_proxies.
    created = await client.post("/v2/images", json=body, headers=proxied(keystone.alice, alice))
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    deleted = await client.delete(f"/v2/images/{image_id}", headers=proxied(keystone.alice, alice))
    assert deleted.status_code == 204
    (call,) = barbican.calls
    assert (call.method, call.path, call.status) == ("DELETE", f"/v1/secrets/{key_id}", 204)
    assert (call.token, call.project_id) == (alice, alpha)
    assert key_id not in barbican.secrets
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)


async def test_the_service_token_never_deletes_a_key(rig: Rig) -> None:
    """A member points cinder_encryption_key_id at another project's secret. Barbican lets an
    admin such as the service user delete any secret, so only the deleting user's rights may
    be used: that secret survives the image's deletion, whoever deletes the image."""
    keystone, settings_for, client_for = rig.keystone, rig.settings_for, rig.client_for
    barbican, database = rig.barbican, rig.database
    alpha = keystone.alice.project_id
    victim = barbican.add_secret("key-of-alpha", alpha, creator_id=keystone.alice.id)
    body = {
        "disk_format": "raw",
        "container_format": "bare",
        KEY: victim,
        POLICY: "on_image_deletion",
    }

    # Behind a proxy that forwards no token: nothing may act in bob's name.
    settings = settings_for(auth_strategy="trusted-proxy")
    client = await client_for(settings)
    headers = proxied(keystone.bob)
    image_id = (await client.post("/v2/images", json=body, headers=headers)).json()["id"]
    assert (await client.delete(f"/v2/images/{image_id}", headers=headers)).status_code == 204
    await make_due(database)
    await scrubber_pass(settings)
    assert barbican.calls == []
    row = await cleanup_of(database, image_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.last_error is not None
    assert "no token or trust of a user of project" in row.last_error

    # With bob's own token (Keystone): Barbican refuses him, and the trust made for the
    # retries carries bob's roles in beta, which Barbican refuses too.
    settings = settings_for()
    client = await client_for(settings)
    bob = keystone.token(keystone.bob)
    created = await client.post("/v2/images", json=body, headers=as_user(bob))
    image_id = created.json()["id"]
    assert (await client.delete(f"/v2/images/{image_id}", headers=as_user(bob))).status_code == 204
    async with database.write() as session:  # bob's token is gone: the trust must carry it
        await session.execute(
            sa.update(ImageKeyCleanup).values(token_expires_at=utcnow() - timedelta(seconds=1))
        )
    await make_due(database)
    await scrubber_pass(settings)
    assert [call.status for call in barbican.calls] == [403, 403]
    assert barbican.calls[0].token == bob
    assert barbican.calls[1].token != bob
    assert barbican.calls[1].project_id == keystone.bob.project_id
    row = await cleanup_of(database, image_id)
    assert (row.status, row.last_error) == ("pending", "Barbican answered 403")
    assert victim in barbican.secrets
