"""Metadef names beyond ASCII, as any client may send them: stored, shown and pointed to."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from personas import ADMIN, proxy_client

NS = "/v2/metadefs/namespaces"


async def test_a_namespace_named_beyond_latin1_is_created_with_an_encoded_location(
    make_settings: Any, client_for: Any
) -> None:
    client = await proxy_client(make_settings, client_for)
    name = "Ú X\U00026c58J\x06Q7\x07ûø"  # what the fuzzer sent: astral and control characters
    response = await client.post(NS, json={"namespace": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.json()["namespace"] == name
    assert response.json()["self"] == f"{NS}/{name}"
    location = response.headers["Location"]
    assert location == f"{NS}/" + quote(name, safe="")
    assert location.isascii()
    shown = await client.get(location, headers=ADMIN)
    assert shown.status_code == 200
    assert shown.json()["namespace"] == name
