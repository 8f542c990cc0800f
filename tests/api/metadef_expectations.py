"""Expected statuses on the metadata definitions routes, per persona (in the order of PERSONAS):
test_metadef_isolation runs them, test_isolation_matrix checks the app serves no other routes."""

from __future__ import annotations

from typing import Final

from personas import ADMIN, ANONYMOUS, OTHER, OWNER, OWNER_READER, persona

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
