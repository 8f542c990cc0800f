"""Metadata definitions (metadefs): the catalog of properties a resource may carry.

A namespace (OS::Compute::Watchdog) groups property definitions (JSON-schema fragments),
objects (named groups of properties), tags, and associations with the resource types the
definitions apply to (OS::Glance::Image, with a prefix such as `hw_`). Request bodies and
definition files are parsed here into frozen values; the JSON schemas they are checked against
are the ones the API serves (`metadef_schemas`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jsonschema

from glimpse.domain import metadef_schemas as schemas
from glimpse.domain.errors import Conflict, InvalidInput, ReadOnlyAttribute

PUBLIC: Final = "public"
PRIVATE: Final = "private"
# What the API renders and never takes back.
NAMESPACE_READ_ONLY: Final = ("self", "schema", "created_at", "updated_at")
OBJECT_READ_ONLY: Final = NAMESPACE_READ_ONLY
TIMESTAMPS: Final = ("created_at", "updated_at")
# Keys a nested item may carry besides its own (a namespace shown by the API and posted back
# keeps them); they are ignored.
_NESTED_IGNORED: Final = frozenset(NAMESPACE_READ_ONLY)
_ASSOCIATION_KEYS: Final = frozenset({"name", "prefix", "properties_target"})
_OBJECT_KEYS: Final = frozenset({"name", "description", "required", "properties"})


@dataclass(frozen=True, slots=True)
class NamespaceFields:
    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = PRIVATE
    protected: bool = False
    owner: str | None = None  # None: the caller's project


@dataclass(frozen=True, slots=True)
class PropertyDefinition:
    name: str
    schema: Mapping[str, Any]  # the JSON-schema fragment, without the name


@dataclass(frozen=True, slots=True)
class ObjectDefinition:
    name: str
    description: str | None = None
    required: tuple[str, ...] = ()
    properties: tuple[PropertyDefinition, ...] = ()

    def properties_json(self) -> dict[str, Any]:
        return {prop.name: dict(prop.schema) for prop in self.properties}


@dataclass(frozen=True, slots=True)
class Association:
    """A namespace applies to resource type `name`, its property names prefixed with
    `prefix`, going to the resource's `properties_target` set of key/value pairs."""

    name: str
    prefix: str | None = None
    properties_target: str | None = None


@dataclass(frozen=True, slots=True)
class NamespaceDocument:
    """A namespace with everything in it: a POST /v2/metadefs/namespaces body or a file."""

    fields: NamespaceFields
    associations: tuple[Association, ...] = ()
    properties: tuple[PropertyDefinition, ...] = ()
    objects: tuple[ObjectDefinition, ...] = ()
    tags: tuple[str, ...] = ()


# -- validation ---------------------------------------------------------------------------


@functools.cache
def _validator(factory: Callable[[], dict[str, Any]]) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(
        factory(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


def _standalone_property() -> dict[str, Any]:
    return schemas.property_schema(require_name=True)


def _nested_property() -> dict[str, Any]:
    return schemas.property_schema(require_name=False)


def _check(factory: Callable[[], dict[str, Any]], document: object, what: str) -> None:
    error = jsonschema.exceptions.best_match(_validator(factory).iter_errors(document))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        at = f" (at {where})" if where else ""
        raise InvalidInput(f"Invalid {what}{at}: {error.message}")


def _object_body(body: object, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(f"The {what} must be a JSON object.")
    return body


def _refuse_read_only(body: Mapping[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        if key in body:
            raise ReadOnlyAttribute(key)


def check_name(name: str, what: str) -> str:
    """Names end up in URLs (/v2/metadefs/namespaces/{namespace}/...): never empty, no `/`,
    at most 80 characters."""
    if not name:
        raise InvalidInput(f"The {what} name may not be empty.")
    if "/" in name:
        raise InvalidInput(f"The {what} name may not contain '/': {name}")
    if len(name) > schemas.NAME_MAX:
        raise InvalidInput(
            f"The {what} name is longer than {schemas.NAME_MAX} characters: {name[:100]}"
        )
    return name


def _unknown_keys(item: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(item) - allowed - _NESTED_IGNORED)
    if unknown:
        raise InvalidInput(f"Unknown attribute(s) of {what}: {', '.join(unknown)}")


def _no_duplicates(names: Iterable[str], what: str, namespace: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise Conflict(f"Duplicate {what} {name} in namespace {namespace}.")
        seen.add(name)


def _nested_properties(mapping: Mapping[str, Any], where: str) -> tuple[PropertyDefinition, ...]:
    """Property definitions keyed by name; each must pass the property schema on its own,
    so a misspelt key or a wrong type is refused rather than stored."""
    definitions = []
    for name, value in mapping.items():
        check_name(name, "property")
        _check(_nested_property, value, f"property {name} of {where}")
        schema = {key: item for key, item in value.items() if key != "name"}
        definitions.append(PropertyDefinition(name=name, schema=schema))
    return tuple(definitions)


# -- request bodies and definition files --------------------------------------------------


def parse_namespace_fields(body: object) -> NamespaceFields:
    """A namespace's own attributes (PUT /v2/metadefs/namespaces/{namespace} takes only
    these; what a PUT body leaves out is reset to its default, as in Glance)."""
    document = _object_body(body, "namespace")
    _refuse_read_only(document, NAMESPACE_READ_ONLY)
    _check(schemas.namespace_schema, document, "namespace")
    return NamespaceFields(
        namespace=check_name(document["namespace"], "namespace"),
        display_name=document.get("display_name"),
        description=document.get("description"),
        visibility=document.get("visibility", PRIVATE),
        protected=document.get("protected", False),
        owner=document.get("owner"),
    )


def parse_namespace(body: object, *, ignore_read_only: bool = False) -> NamespaceDocument:
    """A namespace with its contents. `ignore_read_only` drops what the API renders (a
    definition file may be a saved `show`), instead of refusing it."""
    document = _object_body(body, "namespace")
    if ignore_read_only:
        document = {k: v for k, v in document.items() if k not in NAMESPACE_READ_ONLY}
    fields = parse_namespace_fields(document)
    where = f"namespace {fields.namespace}"
    associations = tuple(
        _association(item, where) for item in document.get("resource_type_associations", [])
    )
    properties = _nested_properties(document.get("properties", {}), where)
    objects = tuple(_nested_object(item, where) for item in document.get("objects", []))
    tags = tuple(_nested_tag(item, where) for item in document.get("tags", []))
    _no_duplicates((a.name for a in associations), "resource type association", fields.namespace)
    _no_duplicates((o.name for o in objects), "object", fields.namespace)
    _no_duplicates(tags, "tag", fields.namespace)
    return NamespaceDocument(fields, associations, properties, objects, tags)


def _association(item: Mapping[str, Any], where: str) -> Association:
    _unknown_keys(item, _ASSOCIATION_KEYS, f"a resource type association of {where}")
    if "name" not in item:
        raise InvalidInput(f"A resource type association of {where} has no name.")
    return association_from(item)


def _nested_object(item: Mapping[str, Any], where: str) -> ObjectDefinition:
    _unknown_keys(item, _OBJECT_KEYS, f"an object of {where}")
    if "name" not in item:
        raise InvalidInput(f"An object of {where} has no name.")
    return _object_from(item)


def _nested_tag(item: Mapping[str, Any], where: str) -> str:
    _unknown_keys(item, frozenset({"name"}), f"a tag of {where}")
    if not isinstance(item.get("name"), str):
        raise InvalidInput(f"A tag of {where} has no name.")
    return check_name(item["name"], "tag")


def _object_from(item: Mapping[str, Any]) -> ObjectDefinition:
    name = check_name(item["name"], "object")
    return ObjectDefinition(
        name=name,
        description=item.get("description"),
        required=tuple(item.get("required") or ()),
        properties=_nested_properties(item.get("properties") or {}, f"object {name}"),
    )


def parse_object(body: object) -> ObjectDefinition:
    """POST or PUT of /v2/metadefs/namespaces/{namespace}/objects[/{name}] (PUT replaces
    the whole object)."""
    document = _object_body(body, "object")
    _refuse_read_only(document, OBJECT_READ_ONLY)
    _check(schemas.object_schema, document, "object")
    return _object_from(document)


def parse_property(body: object) -> PropertyDefinition:
    """POST or PUT of a property: name, title and type required."""
    document = _object_body(body, "property")
    _refuse_read_only(document, TIMESTAMPS)
    _check(_standalone_property, document, "property")
    name = check_name(document["name"], "property")
    schema = {key: value for key, value in document.items() if key != "name"}
    return PropertyDefinition(name=name, schema=schema)


def parse_association(body: object) -> Association:
    document = _object_body(body, "resource type association")
    _refuse_read_only(document, TIMESTAMPS)
    _check(schemas.resource_type_association_schema, document, "resource type association")
    return association_from(document)


def association_from(item: Mapping[str, Any]) -> Association:
    for key in _ASSOCIATION_KEYS:
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > schemas.NAME_MAX):
            raise InvalidInput(
                f"The resource type association's {key} must be a string of at most "
                f"{schemas.NAME_MAX} characters."
            )
    return Association(
        name=check_name(item["name"], "resource type"),
        prefix=item.get("prefix"),
        properties_target=item.get("properties_target"),
    )


def parse_tag(body: object) -> str:
    """PUT of a tag: {"name": <new name>}."""
    document = _object_body(body, "tag")
    _refuse_read_only(document, TIMESTAMPS)
    _check(schemas.tag_schema, document, "tag")
    return check_name(document["name"], "tag")


def parse_tags(body: object, namespace: str) -> tuple[str, ...]:
    """POST of several tags: {"tags": [{"name": ...}, ...]}; a name twice is a conflict."""
    document = _object_body(body, "tag list")
    _refuse_read_only(document, TIMESTAMPS)
    _check(schemas.tag_list_body_schema, document, "tag list")
    names = tuple(check_name(item["name"], "tag") for item in document.get("tags", []))
    _no_duplicates(names, "tag", namespace)
    return names


# -- resource type prefixes ---------------------------------------------------------------


def prefixed(properties: Mapping[str, Any], prefix: str | None) -> dict[str, Any]:
    """Property definitions keyed as they apply to a resource type (hw_ + cpu_policy)."""
    return {f"{prefix or ''}{name}": value for name, value in properties.items()}


def unprefixed(name: str, prefix: str | None) -> str | None:
    """The namespace's own name of `name` as a resource type sees it, or None when `name`
    does not start with the association's prefix (no prefix matches nothing, as in Glance)."""
    if prefix and name.startswith(prefix):
        return name[len(prefix) :]
    return None
