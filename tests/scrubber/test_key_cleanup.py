"""Key cleanup rows without Keystone (noauth), on both databases: which deletes record one, the
wait and backoff when nothing can act in the image's project, and a restore voiding it.
Without Keystone there is no user token for a real Barbican to take: the double
(tests/barbican_double.py) records which calls are made, and that none touches a kept key. The
Barbican calls themselves, with real tokens and trusts against the real Barbican, are in
tests/keystone/test_keystone_key_cleanup_barbican.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from barbican_double import BarbicanDouble, running_barbican
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import ImageKeyCleanup, ImageProperty, utcnow
from glimpse_scrubber.jobs import JOBS, ScrubberRuntime, clean_keys, scrub_deleted_data
from glimpse_scrubber.main import run_pass

OCTET = {"Content-Type": "application/octet-stream"}
KEY = "cinder_encryption_key_id"
POLICY = "cinder_encryption_key_deletion_policy"


@pytest.fixture
def barbican() -> Iterator[BarbicanDouble]:
    with running_barbican() as double:
        yield double


def with_barbican(make_settings: Any, barbican: BarbicanDouble, **overrides: Any) -> Settings:
    settings: Settings = make_settings(barbican={"barbican_endpoint": barbican.url}, **overrides)
    return settings


async def encrypted_image(client: httpx.AsyncClient, key_id: str, policy: str | None) -> str:
    body: dict[str, Any] = {"disk_format": "raw", "container_format": "bare", KEY: key_id}
    if policy is not None:
        body[POLICY] = policy
    image_id: str = (await client.post("/v2/images", json=body)).json()["id"]
    response = await client.put(f"/v2/images/{image_id}/file", content=b"disk", headers=OCTET)
    assert response.status_code == 204
    return image_id


async def cleanups(database: Database, image_id: str | None = None) -> list[ImageKeyCleanup]:
    async with database.read() as session:
        statement = sa.select(ImageKeyCleanup).order_by(ImageKeyCleanup.id)  # type: ignore[arg-type]
        if image_id is not None:
            statement = statement.where(ImageKeyCleanup.image_id == image_id)  # type: ignore[arg-type]
        return list((await session.execute(statement)).scalars())


async def scrubber_pass(settings: Settings) -> None:
    runtime = ScrubberRuntime.build(settings)
    try:
        await run_pass(runtime)
    finally:
        await runtime.aclose()


def test_clean_keys_runs_after_the_scrub() -> None:
    assert JOBS.index(clean_keys) == JOBS.index(scrub_deleted_data) + 1


async def test_only_on_image_deletion_records_a_cleanup(
    client_for: Any, make_settings: Any, barbican: BarbicanDouble, database: Database
) -> None:
    settings = with_barbican(make_settings, barbican)
    client = await client_for(settings)
    images = {}
    for policy in ("on_image_deletion", "do_not_delete", None, "On_Image_Deletion", "later"):
        key_id = barbican.add_secret(f"key-{policy}")
        images[policy] = await encrypted_image(client, key_id, None)
        if policy is not None:
            response = await client.patch(
                f"/v2/images/{images[policy]}",
                json=[{"op": "add", "path": f"/{POLICY}", "value": policy}],
                headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
            )
            # The API takes only Glance's two values; others can still be in the database
            # (written by another tool or an older release), and they never delete the key.
            if policy in {"on_image_deletion", "do_not_delete"}:
                assert response.status_code == 200
            else:
                assert response.status_code == 400
                async with database.write() as session:
                    await session.execute(
                        sa.insert(ImageProperty).values(
                            image_id=images[policy], name=POLICY, value=policy
                        )
                    )
    # A policy without a key id has nothing to delete.
    body = {"disk_format": "raw", "container_format": "bare", POLICY: "on_image_deletion"}
    keyless = (await client.post("/v2/images", json=body)).json()["id"]
    for image_id in [*images.values(), keyless]:
        assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204

    rows = await cleanups(database)
    assert [(row.image_id, row.key_id) for row in rows] == [
        (images["on_image_deletion"], "key-on_image_deletion")
    ]
    assert rows[0].project_id == settings.noauth_project_id
    await scrubber_pass(settings)
    kept = {"key-do_not_delete", "key-None", "key-On_Image_Deletion", "key-later"}
    assert kept <= set(barbican.secrets)
    assert not [call for call in barbican.calls if call.secret_id in kept]


async def test_without_credentials_the_cleanup_waits_with_backoff(
    client_for: Any, make_settings: Any, barbican: BarbicanDouble, database: Database
) -> None:
    # noauth: there is no user token, and the service's own is never used for a key.
    settings = with_barbican(make_settings, barbican)
    client = await client_for(settings)
    key_id = barbican.add_secret("key-waiting")
    image_id = await encrypted_image(client, key_id, "on_image_deletion")
    before = utcnow()
    assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
    (row,) = await cleanups(database, image_id)
    assert (row.status, row.attempts, row.user_token, row.trust_id) == ("pending", 1, None, None)
    assert row.last_error is not None
    assert row.last_error.startswith("no token or trust of a user of project glimpse")
    assert row.next_attempt_at >= before + timedelta(seconds=60)
    assert barbican.calls == []

    # Not due yet: a pass leaves it alone.
    await scrubber_pass(settings)
    (row,) = await cleanups(database, image_id)
    assert row.attempts == 1

    # Due: tried again, and the wait doubles.
    async with database.write() as session:
        await session.execute(
            sa.update(ImageKeyCleanup).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    before = utcnow()
    await scrubber_pass(settings)
    (row,) = await cleanups(database, image_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at >= before + timedelta(seconds=120)
    assert key_id in barbican.secrets


async def test_a_restore_voids_the_cleanup(
    client_for: Any, make_settings: Any, barbican: BarbicanDouble, database: Database
) -> None:
    settings = with_barbican(make_settings, barbican, delayed_delete=True, scrub_time=3600)
    client = await client_for(settings)
    key_id = barbican.add_secret("key-restored")
    image_id = await encrypted_image(client, key_id, "on_image_deletion")
    assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
    (row,) = await cleanups(database, image_id)
    assert (row.status, row.attempts) == ("pending", 0)  # waits for the scrub, no attempt yet

    runtime = ScrubberRuntime.build(settings)
    try:
        assert await runtime.deletion.restore(image_id) is None
    finally:
        await runtime.aclose()
    (row,) = await cleanups(database, image_id)
    assert row.status == "void"

    # Scrubbed later (deleted again, scrub_time passed): a new cleanup, the old one stays void.
    await scrubber_pass(with_barbican(make_settings, barbican, delayed_delete=True, scrub_time=0))
    (row,) = await cleanups(database, image_id)
    assert row.status == "void"
    assert barbican.calls == []
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "active"
