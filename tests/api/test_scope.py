"""Callers without a project, system- and domain-scoped tokens, and `[oslo_policy]
enforce_new_defaults`: who owns what when there is no project, and Glance's legacy defaults."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from glimpse.db.engine import Database
from glimpse.db.tables import Image
from personas import ADMIN, OTHER, OWNER, OWNER_READER, new_image, persona, proxy_client

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}
# A proxy that sends no X-Project-Id (an unscoped or domain-level identity).
NO_PROJECT = persona(None, "member", "reader", user="drifter")
NO_PROJECT_ADMIN = persona(None, "admin", "member", "reader", user="nomad")
# keystonemiddleware's headers for a system-scoped and a domain-scoped token.
SYSTEM_ADMIN = {
    **persona(None, "admin", "member", "reader", user="sysop"),
    "OpenStack-System-Scope": "all",
}
DOMAIN_ADMIN = {
    **persona(None, "admin", "member", "reader", user="domop"),
    "X-Domain-Id": "default",
}
REFUSED_ADD = "You are not authorized to complete add_image action."


def rename(name: str) -> list[dict[str, str]]:
    return [{"op": "replace", "path": "/name", "value": name}]


async def image_count(database: Database) -> int:
    async with database.read() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(Image))).scalar_one()
        )


async def test_a_caller_without_a_project_creates_no_image(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    client = await proxy_client(make_settings, client_for)
    for headers in (NO_PROJECT, NO_PROJECT_ADMIN, SYSTEM_ADMIN, DOMAIN_ADMIN):
        response = await client.post("/v2/images", json={"name": "orphan"}, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["message"] == REFUSED_ADD
    assert await image_count(database) == 0
    # An admin without a project may still create an image for a project it names.
    named = await client.post("/v2/images", json={"owner": "owner"}, headers=NO_PROJECT_ADMIN)
    assert (named.status_code, named.json()["owner"]) == (201, "owner")


async def test_a_caller_without_a_project_owns_nothing(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    """None is no project: it does not match an image whose owner is NULL either."""
    client = await proxy_client(make_settings, client_for)
    image_id = await new_image(client, OWNER, visibility="private")
    async with database.write() as session:
        await session.execute(sa.update(Image).where(Image.id == image_id).values(owner=None))  # type: ignore[arg-type]  # SQLModel column
    url = f"/v2/images/{image_id}"
    for headers in (NO_PROJECT, OWNER):
        assert (await client.get(url, headers=headers)).status_code == 404
        patched = await client.patch(url, json=rename("mine now"), headers={**PATCH, **headers})
        assert patched.status_code == 404
        uploaded = await client.put(f"{url}/file", content=b"x", headers={**OCTET, **headers})
        assert uploaded.status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
    # Listing needs a project (get_images: a reader of one); the owner project lists nothing.
    assert (await client.get("/v2/images", headers=NO_PROJECT)).status_code == 403
    assert (await client.get("/v2/images", headers=OWNER)).json()["images"] == []
    shown = await client.get(url, headers=ADMIN)
    assert (shown.status_code, shown.json()["owner"], shown.json()["name"]) == (200, None, "img")


async def test_system_and_domain_scoped_tokens_are_refused(
    make_settings: Any, client_for: Any
) -> None:
    """Every image rule is project-scoped, as in Glance 33: an admin role held on the system
    or a domain opens nothing."""
    client = await proxy_client(make_settings, client_for)
    public = await new_image(client, ADMIN, visibility="public")
    for headers in (SYSTEM_ADMIN, DOMAIN_ADMIN):
        assert (await client.get("/v2/images", headers=headers)).status_code == 403
        assert (await client.get(f"/v2/images/{public}", headers=headers)).status_code == 404
        deleted = await client.delete(f"/v2/images/{public}", headers=headers)
        assert deleted.status_code == 404
        assert (await client.get("/v2/tasks", headers=headers)).status_code == 403
    assert (await client.get(f"/v2/images/{public}", headers=ADMIN)).status_code == 200


async def test_legacy_defaults_open_the_rules_but_keep_ownership(
    make_settings: Any, client_for: Any
) -> None:
    """enforce_new_defaults = false: Glance's deprecated defaults (anyone) are OR'ed in, and
    Glance's ownership checks still keep other projects' images theirs."""
    legacy = await proxy_client(
        make_settings, client_for, oslo_policy={"enforce_new_defaults": False}
    )
    current = await proxy_client(make_settings, client_for)
    for client, reader_may in ((legacy, True), (current, False)):
        mine = await new_image(client, OWNER)
        public = await new_image(client, ADMIN, visibility="public")
        # A reader of the owning project changes its image only under the legacy defaults.
        renamed = await client.patch(
            f"/v2/images/{mine}", json=rename("by a reader"), headers={**PATCH, **OWNER_READER}
        )
        assert renamed.status_code == (200 if reader_may else 403)
        # Another project's image stays out of reach in both modes.
        theirs = await client.patch(
            f"/v2/images/{public}", json=rename("not yours"), headers={**PATCH, **OTHER}
        )
        assert theirs.status_code == 403
        assert (await client.delete(f"/v2/images/{public}", headers=OTHER)).status_code == 403
        foreign = await client.post("/v2/images", json={"owner": "owner"}, headers=OTHER)
        assert foreign.status_code == 403
        assert "owned by 'owner'" in foreign.json()["message"]
        publish = await client.post("/v2/images", json={"visibility": "public"}, headers=OWNER)
        assert publish.status_code == 403  # publicize_image has no legacy default
    theirs = await legacy.patch(
        f"/v2/images/{public}", json=rename("not yours"), headers={**PATCH, **OTHER}
    )
    assert theirs.json()["message"] == "You do not own this image"


async def test_a_proxy_that_sends_no_project_sees_only_public_images(
    make_settings: Any, client_for: Any
) -> None:
    client = await proxy_client(make_settings, client_for)
    await new_image(client, OWNER)
    public = await new_image(client, ADMIN, visibility="public")
    response = await client.get("/v2/images", headers=NO_PROJECT)
    assert response.status_code == 403  # get_images: a reader of a project
    shown = await client.get(f"/v2/images/{public}", headers=NO_PROJECT)
    assert (shown.status_code, shown.json()["id"]) == (200, public)
