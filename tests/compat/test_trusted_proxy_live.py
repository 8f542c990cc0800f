"""auth_strategy = trusted-proxy on a real `glimpse-api` (uvicorn): identity headers count only
on connections from `trusted_proxies`, whatever else the request says.

The server listens on 127.0.0.1 and trusts that address alone; the clients bind their sockets
to 127.0.0.1 (the proxy) or 127.0.0.2 (anyone else on the loopback network).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from compat_helpers import CompatServer, free_port, running_server, server_env

CONFIG = """\
[DEFAULT]
auth_strategy = trusted-proxy
trusted_proxies = 127.0.0.1
"""
IDENTITY = {
    "X-Identity-Status": "Confirmed",
    "X-User-Id": "mallory",
    "X-Project-Id": "victims",
    "X-Roles": "admin,member,reader",
    "Accept": "application/json",
}


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompatServer]:
    workdir = tmp_path_factory.mktemp("trusted-proxy")
    config = workdir / "glance-api.conf"
    config.write_text(CONFIG)
    env = server_env(workdir, free_port())
    env["GLIMPSE_CONFIG"] = str(config)
    with running_server(workdir, env) as server:
        yield server


def client_from(source: str, server: CompatServer) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(transport=transport, base_url=server.url, timeout=30)


def test_headers_from_another_address_are_refused(proxied_server: CompatServer) -> None:
    with client_from("127.0.0.2", proxied_server) as client:
        refused = client.post("/v2/images", json={"name": "forged"}, headers=IDENTITY)
        # Naming the proxy in X-Forwarded-For changes nothing: the socket's peer counts.
        forwarded = client.get("/v2/images", headers={**IDENTITY, "X-Forwarded-For": "127.0.0.1"})
        assert client.get("/versions").status_code == 200  # discovery needs no identity
    assert refused.status_code == 401
    assert refused.json() == {
        "message": "Authentication required",
        "code": "401 Unauthorized",
        "title": "Unauthorized",
    }
    assert refused.headers["www-authenticate"] == 'Keystone uri=""'
    assert forwarded.status_code == 401
    with client_from("127.0.0.1", proxied_server) as proxy:
        listed = proxy.get("/v2/images", headers=IDENTITY).json()["images"]
    assert "forged" not in [image["name"] for image in listed]
    log = proxied_server.log()
    assert "refused identity headers from 127.0.0.2, not in trusted_proxies" in log


def test_the_same_request_from_the_proxy_is_served(proxied_server: CompatServer) -> None:
    with client_from("127.0.0.1", proxied_server) as proxy:
        created = proxy.post("/v2/images", json={"name": "proxied"}, headers=IDENTITY)
        # A proxy that adds X-Forwarded-For stays the peer (uvicorn's proxy headers are off).
        forwarded = proxy.get(
            f"/v2/images/{created.json()['id']}",
            headers={**IDENTITY, "X-Forwarded-For": "127.0.0.2"},
        )
    assert created.status_code == 201, created.text
    assert (created.json()["owner"], created.json()["name"]) == ("victims", "proxied")
    assert forwarded.status_code == 200
