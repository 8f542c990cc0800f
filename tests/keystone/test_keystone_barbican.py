"""The real Barbican the signature and key-cleanup tests use: Keystone tokens, project access,
the catalog entry."""

from __future__ import annotations

import httpx
import pytest
from barbican_server import BarbicanEnv
from keystone_server import KeystoneEnv

pytestmark = pytest.mark.keystone


def test_secrets_are_read_in_the_token_s_project(
    keystone: KeystoneEnv, barbican_server: BarbicanEnv
) -> None:
    api = barbican_server.secrets
    alice, bob = keystone.token(keystone.alice), keystone.token(keystone.bob)
    shared = api.store(alice, b"-----BEGIN CERTIFICATE-----", "certificate")
    private = api.store(alice, b"\x01" * 32, "opaque", private=True)
    assert api.status(alice, shared) == 200
    assert api.status(bob, shared) == 403  # another project
    assert api.status(alice, private) == 200
    assert api.status(bob, private) == 403
    response = httpx.get(f"{barbican_server.url}/v1/secrets/{shared}")
    assert response.status_code == 401  # no token


def test_barbican_is_in_the_catalog(keystone: KeystoneEnv, barbican_server: BarbicanEnv) -> None:
    services = keystone.admin.call("GET", "/services", params={"type": "key-manager"})["services"]
    (service,) = services
    endpoints = keystone.admin.call("GET", "/endpoints", params={"service_id": service["id"]})
    assert {e["url"] for e in endpoints["endpoints"]} == {barbican_server.url}
