"""Glance's wire representation of metadata definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glimpse.db.metadef_tables import MetadefResourceType, MetadefTag
from glimpse.db.repositories.metadefs import AssociationRow
from glimpse.services.metadef_access import NamespaceView, ObjectView
from glimpse.services.metadef_objects import PropertyView
from glimpse_api.schemas.images import format_time

NAMESPACES = "/v2/metadefs/namespaces"


def namespace_href(name: str) -> str:
    return f"{NAMESPACES}/{name}"


def _optional(body: dict[str, Any], **values: object) -> None:
    body.update({key: value for key, value in values.items() if value is not None})


def property_body(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A stored definition as Glance renders it: a scalar `default` always as a string
    (Glance's property model holds it as text), so clients see what they see from Glance."""
    body = dict(schema)
    default = body.get("default")
    if isinstance(default, bool | int | float | str):
        body["default"] = str(default)
    return body


def property_view(view: PropertyView) -> dict[str, Any]:
    return {"name": view.name, **property_body(view.schema)}


def properties_view(views: list[PropertyView]) -> dict[str, Any]:
    return {"properties": {view.name: property_body(view.schema) for view in views}}


def association_view(row: AssociationRow) -> dict[str, Any]:
    body: dict[str, Any] = {"name": row.name}
    _optional(body, prefix=row.prefix, properties_target=row.properties_target)
    _optional(body, created_at=format_time(row.created_at), updated_at=format_time(row.updated_at))
    return body


def associations_view(rows: list[AssociationRow]) -> dict[str, Any]:
    return {"resource_type_associations": [association_view(row) for row in rows]}


def resource_types_view(rows: list[MetadefResourceType]) -> dict[str, Any]:
    return {
        "resource_types": [
            {
                "name": row.name,
                "created_at": format_time(row.created_at),
                "updated_at": format_time(row.updated_at or row.created_at),
            }
            for row in rows
        ]
    }


def object_view(view: ObjectView) -> dict[str, Any]:
    row = view.row
    body: dict[str, Any] = {"name": row.name}
    _optional(body, description=row.description)
    body.update(
        {
            "required": view.required,
            "properties": {name: property_body(s) for name, s in view.properties.items()},
            "created_at": format_time(row.created_at),
            "updated_at": format_time(row.updated_at),
            "self": f"{namespace_href(view.namespace)}/objects/{row.name}",
            "schema": "/v2/schemas/metadefs/object",
        }
    )
    return body


def objects_view(views: list[ObjectView]) -> dict[str, Any]:
    return {
        "objects": [object_view(view) for view in views],
        "schema": "/v2/schemas/metadefs/objects",
    }


def tag_view(row: MetadefTag) -> dict[str, Any]:
    return {
        "name": row.name,
        "created_at": format_time(row.created_at),
        "updated_at": format_time(row.updated_at),
    }


def tag_names_view(names: list[str]) -> dict[str, Any]:
    """Tag lists carry names only, as in Glance."""
    return {"tags": [{"name": name} for name in names]}


def namespace_view(view: NamespaceView, *, contents: bool = True) -> dict[str, Any]:
    """A namespace; its properties, objects and tags with `contents` (a show), its resource
    type associations whenever it has any (lists show those too)."""
    row = view.row
    body: dict[str, Any] = {"namespace": row.namespace}
    _optional(body, display_name=row.display_name, description=row.description)
    body.update(
        {
            "visibility": row.visibility,
            "protected": row.protected,
            "owner": row.owner,
            "created_at": format_time(row.created_at),
            "updated_at": format_time(row.updated_at),
        }
    )
    if view.associations:
        body["resource_type_associations"] = [association_view(a) for a in view.associations]
    if contents and view.properties:
        body["properties"] = {n: property_body(s) for n, s in view.properties.items()}
    if contents and view.objects:
        body["objects"] = [object_view(o) for o in view.objects]
    if contents and view.tags:
        body["tags"] = [{"name": tag.name} for tag in view.tags]
    body["self"] = namespace_href(row.namespace)
    body["schema"] = "/v2/schemas/metadefs/namespace"
    return body
