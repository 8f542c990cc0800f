"""Who gets what on the metadata definitions routes, for every persona of the isolation matrix.

Each route runs against a namespace owned by project `owner` holding an object `obj`, a property
`prop`, a tag `tag` and an association with OS::Glance::Image: a private one, then a public one.
Routes that change state get a fresh namespace for every persona. For metadefs the two member
personas of the image matrix are just other projects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Final

import httpx

from personas import ADMIN, ANONYMOUS, OTHER, OWNER, OWNER_READER, persona, proxy_client

PERSONAS: Final = (
    OWNER,
    OWNER_READER,
    OTHER,
    persona("friend", "member", "reader", user="fred"),
    persona("pal", "member", "reader", user="paula"),
    ADMIN,
    ANONYMOUS,
)
NS: Final = "/v2/metadefs/namespaces"
ONE: Final = f"{NS}/{{namespace}}"
ALL: Final = (200, 200, 200, 200, 200, 200, 401)
SCHEMA: Final = (200,) * 7  # schemas need no identity, as the image schemas


def read(private: bool) -> tuple[int, ...]:
    return (200, 200, 404, 404, 404, 200, 401) if private else ALL


def change(status: int, private: bool) -> tuple[int, ...]:
    """Admins only; others learn 403 where they may read the namespace, else 404."""
    hidden = 404 if private else 403
    return (403, 403, hidden, hidden, hidden, status, 401)


def expectations(private: bool) -> dict[tuple[str, str], tuple[int, ...]]:
    r, w = read(private), (lambda status: change(status, private))
    return {
        ("GET", ONE): r,
        ("PUT", ONE): w(200),
        ("DELETE", ONE): w(204),
        ("GET", f"{ONE}/objects"): r,
        ("POST", f"{ONE}/objects"): w(201),
        ("DELETE", f"{ONE}/objects"): w(204),
        ("GET", f"{ONE}/objects/{{object_name}}"): r,
        ("PUT", f"{ONE}/objects/{{object_name}}"): w(200),
        ("DELETE", f"{ONE}/objects/{{object_name}}"): w(204),
        ("GET", f"{ONE}/properties"): r,
        ("POST", f"{ONE}/properties"): w(201),
        ("DELETE", f"{ONE}/properties"): w(204),
        ("GET", f"{ONE}/properties/{{property_name}}"): r,
        ("PUT", f"{ONE}/properties/{{property_name}}"): w(200),
        ("DELETE", f"{ONE}/properties/{{property_name}}"): w(204),
        ("GET", f"{ONE}/tags"): r,
        ("POST", f"{ONE}/tags"): w(201),
        ("DELETE", f"{ONE}/tags"): w(204),
        ("GET", f"{ONE}/tags/{{tag_name}}"): r,
        ("POST", f"{ONE}/tags/{{tag_name}}"): w(201),
        ("PUT", f"{ONE}/tags/{{tag_name}}"): w(200),
        ("DELETE", f"{ONE}/tags/{{tag_name}}"): w(204),
        ("GET", f"{ONE}/resource_types"): r,
        ("POST", f"{ONE}/resource_types"): w(201),
        ("DELETE", f"{ONE}/resource_types/{{resource_type}}"): w(204),
    }


# Every metadef route (test_isolation_matrix checks the app serves exactly these and its own).
METADEF_EXPECTED: Final[dict[tuple[str, str], tuple[int, ...]]] = {
    **{
        ("GET", f"/v2/schemas/metadefs/{name}"): SCHEMA
        for name in (
            "namespace",
            "namespaces",
            "resource_type",
            "resource_types",
            "property",
            "properties",
            "object",
            "objects",
            "tag",
            "tags",
        )
    },
    ("GET", NS): ALL,
    # Only admins create; callers with the reader role learn 403.
    ("POST", NS): (403, 403, 403, 403, 403, 201, 401),
    ("GET", "/v2/metadefs/resource_types"): ALL,
    **expectations(private=True),
}
PUBLIC_EXPECTED: Final = expectations(private=False)

_names = itertools.count()
BODIES: Final[dict[tuple[str, str], Callable[[str], dict[str, Any]]]] = {
    ("POST", NS): lambda _ns: {"json": {"namespace": f"OS::Created::{next(_names)}"}},
    ("PUT", ONE): lambda ns: {"json": {"namespace": ns, "owner": "owner"}},
    ("POST", f"{ONE}/objects"): lambda _ns: {"json": {"name": "new-obj"}},
    ("PUT", f"{ONE}/objects/{{object_name}}"): lambda _ns: {"json": {"name": "obj"}},
    ("POST", f"{ONE}/properties"): lambda _ns: {
        "json": {"name": "new-prop", "title": "T", "type": "string"}
    },
    ("PUT", f"{ONE}/properties/{{property_name}}"): lambda _ns: {
        "json": {"name": "prop", "title": "T", "type": "string"}
    },
    ("POST", f"{ONE}/tags"): lambda _ns: {"json": {"tags": [{"name": "new-tag"}]}},
    ("PUT", f"{ONE}/tags/{{tag_name}}"): lambda _ns: {"json": {"name": "renamed"}},
    ("POST", f"{ONE}/resource_types"): lambda _ns: {"json": {"name": "OS::Nova::Flavor"}},
}
SAFE: Final = frozenset({"GET"})


async def _namespace(client: httpx.AsyncClient, visibility: str) -> str:
    name = f"OS::Matrix::{next(_names)}"
    created = await client.post(
        NS,
        json={
            "namespace": name,
            "visibility": visibility,
            "owner": "owner",
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
            "properties": {"prop": {"title": "P", "type": "string"}},
            "objects": [{"name": "obj"}],
            "tags": [{"name": "tag"}],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    return name


async def _matrix(
    client: httpx.AsyncClient, routes: dict[tuple[str, str], tuple[int, ...]], visibility: str
) -> dict[tuple[str, str], tuple[int, ...]]:
    shared = await _namespace(client, visibility)
    actual = {}
    for method, path in sorted(routes):
        statuses = []
        for headers in PERSONAS:
            name = shared
            if "{namespace}" in path and method not in SAFE:
                name = await _namespace(client, visibility)
            url = path.format(
                namespace=name,
                object_name="obj",
                property_name="prop",
                # POST of one tag creates it; the other methods act on the existing one.
                tag_name="fresh-tag" if method == "POST" else "tag",
                resource_type="OS::Glance::Image",
            )
            extra = BODIES.get((method, path), lambda _ns: {})(name)
            response = await client.request(method, url, json=extra.get("json"), headers=headers)
            statuses.append(response.status_code)
        actual[method, path] = tuple(statuses)
    return actual


async def test_metadef_matrix_private_namespace(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    assert await _matrix(client, METADEF_EXPECTED, "private") == METADEF_EXPECTED


async def test_metadef_matrix_public_namespace(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    assert await _matrix(client, PUBLIC_EXPECTED, "public") == PUBLIC_EXPECTED
