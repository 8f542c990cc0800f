"""The JSON schemas of the metadata definitions API, served under /v2/schemas/metadefs/*.

They are also what request bodies and definition files are validated against, so what clients
read (python-glanceclient validates with them before it sends) is what the server enforces.
Keys, types, enums and the document structure match Glance's; the descriptions are our own.
"""

from __future__ import annotations

from typing import Any, Final

NAME_MAX: Final = 80
DESCRIPTION_MAX: Final = 500
OWNER_MAX: Final = 255
VISIBILITIES: Final = ("public", "private")
# JSON-schema types a property may declare (null stands for "unspecified", as in Glance).
PROPERTY_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string", None)


def _read_only(description: str | None = None, *, timestamp: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "readOnly": True}
    if description is not None:
        schema["description"] = description
    if timestamp:
        schema["format"] = "date-time"
    return schema


def _string_array(*, min_items: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if min_items is not None:
        schema["minItems"] = min_items
    return schema


def _integer_definitions(*, array_min_items: int | None) -> dict[str, Any]:
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
        },
        "stringArray": _string_array(min_items=array_min_items),
    }


def property_fields() -> dict[str, Any]:
    """The keys a property definition may have (a JSON-schema fragment describing one
    metadata key)."""
    return {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": list(PROPERTY_TYPES)},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": list(PROPERTY_TYPES)},
                "enum": {"type": "array"},
            },
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _namespace_definitions() -> dict[str, Any]:
    definitions = _integer_definitions(array_min_items=None)
    definitions["property"] = {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["title", "type"],
            "properties": property_fields(),
        },
    }
    return definitions


def _namespace_properties() -> dict[str, Any]:
    return {
        "namespace": {
            "type": "string",
            "description": "Unique name of the namespace, e.g. OS::Compute::Watchdog.",
            "maxLength": NAME_MAX,
        },
        "display_name": {
            "type": "string",
            "description": "Name shown to people, e.g. by dashboards.",
            "maxLength": NAME_MAX,
        },
        "description": {
            "type": "string",
            "description": "What the namespace's definitions are for.",
            "maxLength": DESCRIPTION_MAX,
        },
        "visibility": {
            "type": "string",
            "description": "public: every project sees it; private: its owner only.",
            "enum": list(VISIBILITIES),
        },
        "protected": {
            "type": "boolean",
            "description": "A protected namespace and its contents cannot be deleted.",
        },
        "owner": {
            "type": "string",
            "description": "Project that owns the namespace.",
            "maxLength": OWNER_MAX,
        },
        "created_at": _read_only("When the namespace was created.", timestamp=True),
        "updated_at": _read_only("When the namespace last changed.", timestamp=True),
        "schema": _read_only(),
        "self": _read_only(),
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "properties_target": {"type": "string"},
                },
            },
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }


def _document(
    name: str,
    properties: dict[str, Any],
    required: list[str] | None,
    definitions: dict[str, Any] | None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "name": name,
        "properties": properties,
        "additionalProperties": False,
    }
    if definitions:
        schema["definitions"] = definitions
    if required:
        schema["required"] = required
    return schema


def _collection(name: str, item: dict[str, Any], *, keyed: bool = False) -> dict[str, Any]:
    """A list document (`keyed`: a JSON object of items by name) holding `item`s; the item's
    definitions move up to the collection, where `$ref`s resolve."""
    item = dict(item)
    definitions = item.pop("definitions", None)
    container: dict[str, Any] = (
        {"type": "object", "additionalProperties": item}
        if keyed
        else {"type": "array", "items": item}
    )
    schema: dict[str, Any] = {
        "name": name,
        "properties": {
            name: container,
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if definitions:
        schema["definitions"] = definitions
    return schema


def namespace_schema() -> dict[str, Any]:
    return _document("namespace", _namespace_properties(), ["namespace"], _namespace_definitions())


def namespaces_schema() -> dict[str, Any]:
    return _collection("namespaces", namespace_schema())


def object_schema() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": _read_only(),
        "self": _read_only(),
        "created_at": _read_only("When the object was created.", timestamp=True),
        "updated_at": _read_only("When the object last changed.", timestamp=True),
    }
    return _document("object", properties, ["name"], _namespace_definitions())


def objects_schema() -> dict[str, Any]:
    return _collection("objects", object_schema())


def property_schema(*, require_name: bool = True) -> dict[str, Any]:
    """One property definition; its name is required when it stands alone (POST, PUT) and is
    the key when it sits in a collection."""
    required = ["name", "title", "type"] if require_name else ["title", "type"]
    return _document(
        "property", property_fields(), required, _integer_definitions(array_min_items=1)
    )


def properties_schema() -> dict[str, Any]:
    return _collection("properties", property_schema(require_name=False), keyed=True)


def tag_schema() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": NAME_MAX},
        "created_at": _read_only("When the tag was created.", timestamp=True),
        "updated_at": _read_only("When the tag last changed.", timestamp=True),
    }
    return _document("tag", properties, ["name"], None)


def tags_schema() -> dict[str, Any]:
    return _collection("tags", tag_schema())


def tag_list_body_schema() -> dict[str, Any]:
    """The body of a bulk tag create: {"tags": [{"name": ...}, ...]}."""
    tag_item = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": NAME_MAX}},
        "required": ["name"],
        "additionalProperties": False,
    }
    return _document("tags", {"tags": {"type": "array", "items": tag_item}}, None, None)


def resource_type_association_schema() -> dict[str, Any]:
    properties = {
        "name": {
            "type": "string",
            "description": "Resource type, named as in Heat where one exists "
            "(OS::Glance::Image, OS::Nova::Flavor, OS::Cinder::Volume...).",
            "maxLength": NAME_MAX,
        },
        "prefix": {
            "type": "string",
            "description": "Put in front of the namespace's property names when they are "
            "applied to this resource type, separator included (hw_, hw:).",
            "maxLength": NAME_MAX,
        },
        "properties_target": {
            "type": "string",
            "description": "Which of the resource's key/value sets the properties go to, "
            "for resources with several (a volume's image metadata: image).",
            "maxLength": NAME_MAX,
        },
        "created_at": _read_only("When the association was made.", timestamp=True),
        "updated_at": _read_only("When the association last changed.", timestamp=True),
    }
    return _document("resource_type_association", properties, ["name"], None)


def resource_type_associations_schema() -> dict[str, Any]:
    return _collection("resource_type_associations", resource_type_association_schema())


# Served under /v2/schemas/metadefs/<key>, as Glance's router names them.
SERVED: Final = {
    "namespace": namespace_schema,
    "namespaces": namespaces_schema,
    "resource_type": resource_type_association_schema,
    "resource_types": resource_type_associations_schema,
    "property": property_schema,
    "properties": properties_schema,
    "object": object_schema,
    "objects": objects_schema,
    "tag": tag_schema,
    "tags": tags_schema,
}
