"""Trusted-proxy identities the API tests act as (Keystone sends implied roles too:
admin implies member, member implies reader)."""

from __future__ import annotations

from typing import Any

import httpx


def persona(project: str | None, *roles: str, user: str = "u") -> dict[str, str]:
    headers = {"X-Identity-Status": "Confirmed", "X-User-Id": user, "X-Roles": ",".join(roles)}
    if project is not None:
        headers["X-Project-Id"] = project
    return headers


OWNER = persona("owner", "member", "reader", user="alice")
OWNER_READER = persona("owner", "reader", user="olga")
OTHER = persona("other", "member", "reader", user="bob")
FRIEND = persona("friend", "member", "reader", user="carol")
ADMIN = persona("ops", "admin", "member", "reader", user="root")
ANONYMOUS: dict[str, str] = {}


async def proxy_client(make_settings: Any, client_for: Any, **overrides: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(
        make_settings(auth_strategy="trusted-proxy", **overrides)
    )
    return client


async def new_image(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post("/v2/images", json={"name": "img", **body}, headers=headers)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def listed(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> set[str]:
    response = await client.get(f"/v2/images{query}", headers=headers)
    assert response.status_code == 200, response.text
    return {image["id"] for image in response.json()["images"]}
