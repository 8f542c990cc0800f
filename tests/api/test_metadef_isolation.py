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
from metadef_expectations import METADEF_EXPECTED, NS, ONE, PERSONAS, PUBLIC_EXPECTED

from personas import ADMIN, proxy_client

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
