"""The metadata definitions API's bodies, from the schemas it serves under /v2/schemas/metadefs
(metadef_schemas), so the document and the server's own validation never disagree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from glimpse.domain import metadef_schemas as served

_LOCAL: str = "#/definitions/"


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A served schema without its `definitions`: each `#/definitions/x` reference (which would
    point into the document's root here) replaced by what it names, and typed as an object."""
    definitions: dict[str, Any] = schema.get("definitions", {})

    def walk(node: object) -> Any:  # noqa: ANN401 -- any JSON value
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str) and target.startswith(_LOCAL):
                return walk(definitions[target.removeprefix(_LOCAL)])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    body = {key: value for key, value in schema.items() if key != "definitions"}
    return {"type": "object", **walk(body)}


def _writable(factory: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A served document as a request body: what the API renders (readOnly) is refused there."""
    schema = _inline(factory())
    schema["properties"] = {
        name: value
        for name, value in schema["properties"].items()
        if not value.get("readOnly", False)
    }
    return schema


def _resource_types() -> dict[str, Any]:
    """GET /v2/metadefs/resource_types: the known types, which Glance serves no schema for."""
    time = {"type": "string", "format": "date-time"}
    resource_type = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "created_at": time, "updated_at": time},
        "required": ["name", "created_at", "updated_at"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"resource_types": {"type": "array", "items": resource_type}},
        "required": ["resource_types"],
        "additionalProperties": False,
    }


def metadef_schemas() -> dict[str, dict[str, Any]]:
    return {
        "MetadefNamespace": _inline(served.namespace_schema()),
        "MetadefNamespaces": _inline(served.namespaces_schema()),
        "NewMetadefNamespace": _writable(served.namespace_schema),
        "MetadefObject": _inline(served.object_schema()),
        "MetadefObjects": _inline(served.objects_schema()),
        "NewMetadefObject": _writable(served.object_schema),
        "MetadefProperty": _inline(served.property_schema()),
        "MetadefProperties": _inline(served.properties_schema()),
        "MetadefTag": _inline(served.tag_schema()),
        "MetadefTags": _inline(served.tags_schema()),
        "NewMetadefTag": _writable(served.tag_schema),
        "NewMetadefTags": _inline(served.tag_list_body_schema()),
        "MetadefAssociation": _inline(served.resource_type_association_schema()),
        "MetadefAssociations": _inline(served.resource_type_associations_schema()),
        "NewMetadefAssociation": _writable(served.resource_type_association_schema),
        "MetadefResourceTypes": _resource_types(),
    }
