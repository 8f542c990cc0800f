"""What the fuzzer's requests find on the server: images of two projects in every state a
request can meet, an import task, and the ids that name them."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
OCTET = {"Content-Type": "application/octet-stream"}


def persona(project: str, *roles: str, user: str) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-User-Id": user,
        "X-Project-Id": project,
        "X-Roles": ",".join(roles),
    }


ADMIN = persona("ops", "admin", "member", "reader", user="root")
MEMBER_A = persona("alpha", "member", "reader", user="alice")
MEMBER_B = persona("beta", "member", "reader", user="bob")
READER_A = persona("alpha", "reader", user="olga")
ANONYMOUS: dict[str, str] = {}
PROJECTS = ("alpha", "beta", "gamma", "ops")
STORES = ("fast", "cheap")
TAG = "t"


@dataclass(frozen=True, slots=True)
class Seeds:
    images: list[str]
    tasks: list[str]


class _Seeder:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.images: list[str] = []

    def call(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        json: object = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        response = self.client.request(method, url, headers=headers, json=json, content=content)
        assert response.is_success, f"{method} {url}: {response.status_code} {response.text}"
        return response

    def image(self, headers: dict[str, str], **fields: object) -> str:
        body = {"name": "seed", "disk_format": "raw", "container_format": "bare", "tags": [TAG]}
        created = self.call("POST", "/v2/images", headers, json={**body, **fields})
        image_id: str = created.json()["id"]
        self.images.append(image_id)
        return image_id

    def upload(self, headers: dict[str, str], image_id: str) -> None:
        self.call("PUT", f"/v2/images/{image_id}/file", {**headers, **OCTET}, content=b"d" * 64)

    def share(self, image_id: str, project: str, *, accept: bool) -> None:
        self.call("POST", f"/v2/images/{image_id}/members", MEMBER_A, json={"member": project})
        if accept:
            answer = persona(project, "member", "reader", user="x")
            url = f"/v2/images/{image_id}/members/{project}"
            self.call("PUT", url, answer, json={"status": "accepted"})


def seed(client: httpx.Client) -> Seeds:
    """Images of project alpha (shared with beta pending and accepted, queued, staged and being
    imported, deactivated, protected, public, community) and one of beta."""
    seeder = _Seeder(client)
    pending = seeder.image(MEMBER_A)
    seeder.upload(MEMBER_A, pending)
    seeder.share(pending, "beta", accept=False)
    accepted = seeder.image(MEMBER_A)
    seeder.upload(MEMBER_A, accepted)
    seeder.share(accepted, "beta", accept=True)
    seeder.image(MEMBER_A)  # queued, no data
    staged = seeder.image(MEMBER_A)
    seeder.call("PUT", f"/v2/images/{staged}/stage", {**MEMBER_A, **OCTET}, content=b"s" * 64)
    importing = seeder.image(MEMBER_A)
    seeder.call("PUT", f"/v2/images/{importing}/stage", {**MEMBER_A, **OCTET}, content=b"i" * 64)
    method = {"method": {"name": "glance-direct"}}
    seeder.call("POST", f"/v2/images/{importing}/import", MEMBER_A, json=method)
    deactivated = seeder.image(MEMBER_A)
    seeder.upload(MEMBER_A, deactivated)
    seeder.call("POST", f"/v2/images/{deactivated}/actions/deactivate", MEMBER_A)
    seeder.upload(MEMBER_A, seeder.image(MEMBER_A, protected=True))
    seeder.upload(ADMIN, seeder.image(ADMIN, visibility="public", owner="alpha"))
    seeder.upload(MEMBER_A, seeder.image(MEMBER_A, visibility="community"))
    seeder.upload(MEMBER_B, seeder.image(MEMBER_B, visibility="private"))
    tasks = seeder.call("GET", f"/v2/images/{importing}/tasks", MEMBER_A).json()["tasks"]
    return Seeds(images=seeder.images, tasks=[task["id"] for task in tasks])
