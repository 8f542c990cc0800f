"""Key cleanup against a real Keystone and the Barbican double, for the faults a real Barbican
cannot be made to show on demand: an outage (connection refused, 503) and a Barbican that takes
the call and never answers. Everything else (each policy, the user's token, the trust that
outlives it, a proxy's forwarded token, never the service's token) runs against the real
Barbican in test_keystone_key_cleanup_barbican.py.

The double asks Keystone (GET /v3/auth/tokens) which user, roles and project each token it
receives stands for while the call is in flight, and applies Barbican's default policy to them;
test_the_double_decides_as_barbican_does holds it to the real Barbican's answers.
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
from barbican_server import BarbicanEnv
from cryptography.fernet import Fernet
from keystone_server import ADMIN_PASSWORD, KeystoneEnv, password_auth

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
            keystone_authtoken=keystone.authtoken_section(),
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


def test_the_double_decides_as_barbican_does(rig: Rig, barbican_server: BarbicanEnv) -> None:
    """Barbican's default secret:delete, on real tokens, asked of the double and of the real
    Barbican alike: an admin of any project may, a member of the secret's project may, a member
    of another project or a reader may not (403), a system-scoped token or no valid token is
    not taken (401)."""
    keystone = rig.keystone
    alice, bob, rita = (
        keystone.token(user) for user in (keystone.alice, keystone.bob, keystone.rita)
    )
    service = keystone.token(keystone.service)  # admin and service in project `service`
    system = rig.scopes.admin_token  # Keystone's admin, system-scoped
    double = rig.barbican
    real = barbican_server.secrets
    ids = {
        "of-alpha": real.store(alice, b"\x01" * 32, "opaque"),
        "of-beta": real.store(bob, b"\x02" * 32, "opaque"),
    }
    double.add_secret(ids["of-alpha"], keystone.alice.project_id, creator_id=keystone.alice.id)
    double.add_secret(ids["of-beta"], keystone.bob.project_id, creator_id=keystone.bob.id)
    attempts = [
        (bob, "of-alpha", 403),  # another project's
        (rita, "of-alpha", 403),  # a reader only
        (system, "of-alpha", 401),  # no project in the token
        ("not-a-token", "of-alpha", 401),
        (alice, "of-alpha", 204),
        (alice, "of-alpha", 404),
        (service, "of-beta", 204),  # role admin, whatever the project
    ]
    for url in (double.url, barbican_server.url):
        answered = [
            httpx.delete(
                f"{url}/v1/secrets/{ids[name]}", headers={"X-Auth-Token": token}, timeout=30
            ).status_code
            for token, name, _ in attempts
        ]
        assert answered == [status for _, _, status in attempts], url
    assert double.secrets == {}
