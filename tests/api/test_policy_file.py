"""[oslo_policy] policy_file: an operator's rules change what the API allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glimpse.config import ConfigError, load_settings
from personas import ADMIN, OWNER, OWNER_READER, new_image, proxy_client


async def test_policy_file_overrides_a_rule(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"add_image": "role:admin"\n"get_images": "role:admin or role:member"\n')
    client = await proxy_client(
        make_settings, client_for, oslo_policy={"policy_file": str(policy_file)}
    )
    refused = await client.post("/v2/images", json={"name": "x"}, headers=OWNER)
    assert refused.status_code == 403
    assert refused.json()["message"] == "You are not authorized to complete add_image action."
    image_id = await new_image(client, ADMIN, owner="owner")
    # Untouched rules keep their defaults: the owner project still changes its image.
    patch = await client.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/name", "value": "renamed"}],
        headers={**OWNER, "Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert patch.status_code == 200
    # get_images now needs the member role: a reader may no longer list, but still reads.
    assert (await client.get("/v2/images", headers=OWNER_READER)).status_code == 403
    assert (await client.get(f"/v2/images/{image_id}", headers=OWNER_READER)).status_code == 200
    listed = await client.get("/v2/images", headers=OWNER)
    assert [image["id"] for image in listed.json()["images"]] == [image_id]


async def test_defaults_without_a_policy_file(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    assert (await client.post("/v2/images", json={}, headers=OWNER)).status_code == 201
    assert (await client.post("/v2/images", json={}, headers=OWNER_READER)).status_code == 403


def test_relative_policy_file_is_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text('"add_image": "role:admin"\n')
    config = tmp_path / "glimpse.conf"
    config.write_text("[oslo_policy]\npolicy_file = policy.yaml\n")
    settings = load_settings(config)
    assert settings.oslo_policy.policy_file == tmp_path / "policy.yaml"
    config.write_text("[oslo_policy]\npolicy_file = missing.yaml\n")
    with pytest.raises(ConfigError, match=r"\[oslo_policy\] policy_file"):
        load_settings(config)


def test_broken_policy_file_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("add_image: [unclosed\n")
    config = tmp_path / "glimpse.conf"
    config.write_text("[oslo_policy]\npolicy_file = policy.yaml\n")
    with pytest.raises(ConfigError, match="not valid YAML or JSON"):
        load_settings(config)


async def test_get_image_rule_also_filters_lists(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    # Only the owning project (or an admin) may see an image, public or not.
    policy_file.write_text(
        '"get_image": "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"\n'
    )
    client = await proxy_client(
        make_settings, client_for, oslo_policy={"policy_file": str(policy_file)}
    )
    public = await new_image(client, ADMIN, visibility="public", owner="ops")
    own = await new_image(client, OWNER)
    listed = await client.get("/v2/images", headers=OWNER)
    assert [image["id"] for image in listed.json()["images"]] == [own]
    assert (await client.get(f"/v2/images/{public}", headers=OWNER)).status_code == 404
    admin_listed = await client.get("/v2/images", headers=ADMIN)
    assert {image["id"] for image in admin_listed.json()["images"]} == {public, own}
