"""Key cleanup (cinder_encryption_key_id with on_image_deletion) against the real Barbican and
Keystone: the keys are secrets the users stored in Barbican, and Barbican itself decides, with
its default policy, whether the token Glimpse sends may delete them. Its log says in whose name
each call came (the user and project Keystone's middleware found for the token).

Barbican outages and a Barbican that hangs (faults a real one cannot be made to show on demand)
are in test_keystone_key_cleanup.py, against tests/barbican_double.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from barbican_server import BarbicanEnv
from cryptography.fernet import Fernet
from keystone_server import ADMIN_PASSWORD, KeystoneEnv, User, password_auth

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
AES_KEY = b"\x42" * 32


@pytest.fixture
def settings_for(
    make_settings: Callable[..., Settings], keystone: KeystoneEnv, barbican_server: BarbicanEnv
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("auth_strategy", "keystone")
        settings: Settings = make_settings(
            keystone_authtoken=keystone.authtoken_section(),
            barbican={"barbican_endpoint": barbican_server.url},
            key_manager={"token_encryption_key": TOKEN_KEY, "cleanup_retry_initial": 60},
            **overrides,
        )
        return settings

    return make


def as_user(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def store_key(barbican: BarbicanEnv, token: str) -> str:
    """A volume encryption key as Cinder stores one: a symmetric AES-256 secret."""
    return barbican.secrets.store(token, AES_KEY, "symmetric", algorithm="aes", bit_length=256)


async def encrypted_image(
    client: httpx.AsyncClient, headers: dict[str, str], key_id: str, policy: str | None
) -> str:
    body: dict[str, Any] = {"disk_format": "raw", "container_format": "bare", KEY: key_id}
    if policy is not None:
        body[POLICY] = policy
    created = await client.post("/v2/images", json=body, headers=headers)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    response = await client.put(
        f"/v2/images/{image_id}/file", content=b"disk", headers={**OCTET, **headers}
    )
    assert response.status_code == 204
    return image_id


async def cleanup_of(database: Database, image_id: str) -> ImageKeyCleanup:
    async with database.read() as session:
        statement = sa.select(ImageKeyCleanup).where(ImageKeyCleanup.image_id == image_id)  # type: ignore[arg-type]  # SQLModel column
        return (await session.execute(statement)).scalar_one()


async def expire_tokens_and_make_due(database: Database) -> None:
    past = utcnow() - timedelta(seconds=1)
    async with database.write() as session:
        await session.execute(
            sa.update(ImageKeyCleanup).values(token_expires_at=past, next_attempt_at=past)
        )


async def scrubber_pass(settings: Settings) -> None:
    runtime = ScrubberRuntime.build(settings)
    try:
        await run_pass(runtime)
    finally:
        await runtime.aclose()


def trust_exists(keystone: KeystoneEnv, trust_id: str) -> bool:
    admin = keystone.admin.issue(password_auth("admin", ADMIN_PASSWORD, system=True))[0]
    response = httpx.get(
        f"{keystone.url}/OS-TRUST/trusts/{trust_id}",
        headers={"X-Auth-Token": admin},
        timeout=30,
    )
    return response.status_code == 200


def deletes(barbican: BarbicanEnv, key_id: str) -> list[tuple[str, str, int]]:
    return [call for call in barbican.requests(key_id) if call[0] == "DELETE"]


async def test_each_policy_with_the_users_token(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    client = await client_for(settings_for())
    alice = keystone.token(keystone.alice)
    keys, images = {}, {}
    for policy in ("on_image_deletion", "do_not_delete", None):
        keys[policy] = store_key(barbican_server, alice)
        images[policy] = await encrypted_image(client, as_user(alice), keys[policy], policy)
    for image_id in images.values():
        deleted = await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
        assert deleted.status_code == 204

    # Deleted right after the image's delete, by Barbican, with alice's token in her project.
    gone = keys["on_image_deletion"]
    assert deletes(barbican_server, gone) == [("DELETE", f"/v1/secrets/{gone}", 204)]
    assert (alice_id := keystone.alice.id) is not None
    assert barbican_server.callers(gone)[-1] == ("DELETE", alice_id, keystone.alice.project_id)
    assert barbican_server.secrets.status(alice, gone) == 404
    row = await cleanup_of(database, images["on_image_deletion"])
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)
    await scrubber_pass(settings_for())
    for policy in ("do_not_delete", None):
        assert deletes(barbican_server, keys[policy]) == []
        assert barbican_server.secrets.status(alice, keys[policy]) == 200


async def test_delayed_delete_uses_a_trust_once_the_token_is_gone(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    delayed = settings_for(delayed_delete=True, scrub_time=3600)
    client = await client_for(delayed)
    alice = keystone.token(keystone.alice)
    key_id = store_key(barbican_server, alice)
    image_id = await encrypted_image(client, as_user(alice), key_id, "on_image_deletion")
    deleted = await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    assert deleted.status_code == 204
    await scrubber_pass(delayed)  # inside scrub_time: the key stays
    assert deletes(barbican_server, key_id) == []
    row = await cleanup_of(database, image_id)
    trust_id = row.trust_id
    assert trust_id is not None
    assert trust_exists(keystone, trust_id)
    # The kept token is encrypted at rest with the configured key.
    assert row.user_token is not None
    assert alice not in row.user_token
    assert Fernet(TOKEN_KEY.encode()).decrypt(row.user_token.encode()).decode() == alice

    await expire_tokens_and_make_due(database)  # the kept token is dropped: the trust acts
    await scrubber_pass(settings_for(delayed_delete=True, scrub_time=0))
    assert deletes(barbican_server, key_id) == [("DELETE", f"/v1/secrets/{key_id}", 204)]
    # A trust-scoped token impersonating alice, in alice's project.
    caller = barbican_server.callers(key_id)[-1]
    assert caller == ("DELETE", keystone.alice.id, keystone.alice.project_id)
    assert barbican_server.secrets.status(alice, key_id) == 404
    row = await cleanup_of(database, image_id)
    assert (row.status, row.user_token, row.trust_id) == ("done", None, None)
    assert not trust_exists(keystone, trust_id)  # deleted after use


async def test_restore_before_the_scrub_keeps_the_key(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    delayed = settings_for(delayed_delete=True, scrub_time=3600)
    client = await client_for(delayed)
    alice = keystone.token(keystone.alice)
    key_id = store_key(barbican_server, alice)
    image_id = await encrypted_image(client, as_user(alice), key_id, "on_image_deletion")
    deleted = await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    assert deleted.status_code == 204
    runtime = ScrubberRuntime.build(delayed)
    try:
        assert await runtime.deletion.restore(image_id) is None
    finally:
        await runtime.aclose()
    await expire_tokens_and_make_due(database)
    await scrubber_pass(settings_for(delayed_delete=True, scrub_time=0))
    assert deletes(barbican_server, key_id) == []
    assert barbican_server.secrets.status(alice, key_id) == 200
    assert (await cleanup_of(database, image_id)).status == "void"


async def test_a_missing_secret_counts_as_deleted(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    client = await client_for(settings_for())
    alice = keystone.token(keystone.alice)
    never = "5f0d3a2e-0000-4000-8000-00000000abcd"
    image_id = await encrypted_image(client, as_user(alice), never, "on_image_deletion")
    assert (
        await client.delete(f"/v2/images/{image_id}", headers=as_user(alice))
    ).status_code == 204
    assert deletes(barbican_server, never) == [("DELETE", f"/v1/secrets/{never}", 404)]
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


async def test_a_token_forwarded_by_the_proxy_deletes_the_key(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    client = await client_for(settings_for(auth_strategy="trusted-proxy"))
    alice = keystone.token(keystone.alice)
    key_id = store_key(barbican_server, alice)
    headers = proxied(keystone.alice, alice)
    image_id = await encrypted_image(client, headers, key_id, "on_image_deletion")
    assert (await client.delete(f"/v2/images/{image_id}", headers=headers)).status_code == 204
    assert deletes(barbican_server, key_id) == [("DELETE", f"/v1/secrets/{key_id}", 204)]
    caller = barbican_server.callers(key_id)[-1]
    assert caller == ("DELETE", keystone.alice.id, keystone.alice.project_id)
    assert (await cleanup_of(database, image_id)).status == "done"


async def test_the_service_token_never_deletes_a_key(
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    settings_for: Callable[..., Settings],
    client_for: Any,
    database: Database,
) -> None:
    """Bob points cinder_encryption_key_id at a key of alice's project. Barbican would let the
    service user (an admin) delete it; bob's token and the trust from bob it refuses (403),
    and the key survives."""
    alice = keystone.token(keystone.alice)
    victim = store_key(barbican_server, alice)
    settings = settings_for()
    client = await client_for(settings)
    bob = keystone.token(keystone.bob)
    image_id = await encrypted_image(client, as_user(bob), victim, "on_image_deletion")
    assert (await client.delete(f"/v2/images/{image_id}", headers=as_user(bob))).status_code == 204
    await expire_tokens_and_make_due(database)  # the retry must use the trust from bob
    await scrubber_pass(settings)
    assert [status for _, _, status in deletes(barbican_server, victim)] == [403, 403]
    callers = barbican_server.callers(victim)
    assert callers == [("DELETE", keystone.bob.id, keystone.bob.project_id)] * 2
    row = await cleanup_of(database, image_id)
    assert (row.status, row.last_error) == ("pending", "Barbican answered 403")
    assert barbican_server.secrets.status(alice, victim) == 200
