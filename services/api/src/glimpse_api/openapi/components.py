"""The schemas of the document's bodies: those served under /v2/schemas (images, members,
tasks) and the other documents' shapes."""

from __future__ import annotations

from typing import Any

from glimpse.domain.members import MAX_MEMBER_LENGTH
from glimpse.domain.patch import PatchOp
from glimpse.domain.tasks import KNOWN_METHODS
from glimpse.services.legacy_tasks import LEGACY_INPUTS
from glimpse.services.location_import import HASH_ALGORITHMS
from glimpse_api.openapi.metadefs import metadef_schemas
from glimpse_api.openapi.routes import enum, ref, string
from glimpse_api.schemas.json_schemas import image_schema, images_schema
from glimpse_api.schemas.members import member_schema, members_schema
from glimpse_api.schemas.tasks import task_schema, tasks_schema


def _object(properties: dict[str, Any], *required: str, closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _array(items: dict[str, Any], **constraints: Any) -> dict[str, Any]:  # noqa: ANN401 -- JSON values
    return {"type": "array", "items": items, **constraints}


def _error() -> dict[str, Any]:
    properties = {"message": string(), "code": string(pattern=r"^\d{3} "), "title": string()}
    return _object(properties, *properties, closed=True)


def _versions() -> dict[str, Any]:
    link = _object({"rel": string(), "href": string()}, "rel", "href")
    version = _object(
        {
            "id": string(pattern=r"^v2\.\d+$"),
            "status": enum(("CURRENT", "SUPPORTED")),
            "links": _array(link),
        },
        "id",
        "status",
        "links",
    )
    return _object({"versions": _array(version)}, "versions")


def _image_patch(*, legacy: bool) -> dict[str, Any]:
    """JSON-patch on an image: 2.1's {"op", "path", "value"}, or 2.0's {"add": path, ...}."""
    path = string(pattern="^/")
    value: dict[str, Any] = {}  # any JSON value; the attribute decides
    if legacy:
        shapes = [
            _object({op.value: path}, op.value)
            if op is PatchOp.REMOVE
            else _object({op.value: path, "value": value}, op.value, "value")
            for op in PatchOp
        ]
    else:
        changes = enum((PatchOp.ADD, PatchOp.REPLACE))
        shapes = [
            _object({"op": changes, "path": path, "value": value}, "op", "path", "value"),
            _object({"op": enum((PatchOp.REMOVE,)), "path": path}, "op", "path"),
        ]
    return _array({"oneOf": shapes})


def _location() -> dict[str, Any]:
    location: dict[str, Any] = image_schema()["properties"]["locations"]["items"]
    return location


def _new_location() -> dict[str, Any]:
    """Glance's add-location body: other members are ignored; validation_data takes both of
    its members or neither."""
    validation = _object(
        {
            "os_hash_algo": enum(HASH_ALGORITHMS),
            "os_hash_value": string(maxLength=128),
        },
        closed=True,
    )
    validation["dependentRequired"] = {
        "os_hash_algo": ["os_hash_value"],
        "os_hash_value": ["os_hash_algo"],
    }
    return _object({"url": string(minLength=1), "validation_data": validation}, "url")


def _import_request() -> dict[str, Any]:
    method = _object({"name": enum(KNOWN_METHODS), "uri": string()}, "name")
    return _object(
        {
            "method": method,
            "stores": _array(string(), minItems=1),
            "all_stores": {"type": "boolean"},
            "all_stores_must_succeed": {"type": "boolean"},
        },
        "method",
    )


def _import_info() -> dict[str, Any]:
    methods = _object(
        {"description": string(), "type": string(), "value": _array(string())}, "value"
    )
    return _object({"import-methods": methods}, "import-methods")


def _new_task() -> dict[str, Any]:
    """The Tasks API's `import`: the task schema's members, `input` naming the data's URL."""
    task_input = _object(
        {
            "import_from": string(),
            "import_from_format": string(),
            "image_properties": ref("Image"),
        },
        *LEGACY_INPUTS,
    )
    properties = {**task_schema()["properties"], "input": task_input}
    return _object(properties, "type", "input", closed=True)


def _stores(*, detail: bool) -> dict[str, Any]:
    flag = enum(("true",))
    properties: dict[str, Any] = {
        "id": string(),
        "description": string(),
        "default": flag,
        "read-only": flag,
    }
    required = ["id"]
    if detail:
        properties.update(type=string(), weight={"type": "integer"}, properties={"type": "object"})
        required += ["type", "weight", "properties"]
    return _object({"stores": _array(_object(properties, *required, closed=True))}, "stores")


def _usage() -> dict[str, Any]:
    names = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")
    counters = {
        name: _object(
            {"usage": {"type": "integer"}, "limit": {"type": "integer"}}, "usage", "limit"
        )
        for name in names
    }
    return _object({"usage": _object(counters, *names)}, "usage")


def _cache_state(*, nodes: bool) -> dict[str, Any]:
    """GET /v2/cache: this node's cached and queued images as Glance shows them; with `nodes`,
    GET /v2/cache/nodes: every node's, with its counters."""
    number = {"type": "number"}
    integer = {"type": "integer"}
    entry_fields = {
        "id": integer,
        "image_id": string(),
        "last_accessed": number,
        "last_modified": number,
        "size": integer,
        "hits": integer,
        "checksum": {"type": ["string", "null"]},
    }
    entry = _object(entry_fields, *entry_fields)
    counters = ("hits", "misses", "bytes_served", "fills", "evictions")
    node_fields = {
        "node_reference_url": string(),
        "cached_images": _array(entry),
        "queued_images": _array(string()),
        "counters": _object(dict.fromkeys(counters, integer), *counters),
    }
    if nodes:
        return _object({"nodes": _array(_object(node_fields, *node_fields))}, "nodes")
    return _object(
        {"cached_images": _array(entry), "queued_images": _array(string())},
        "cached_images",
        "queued_images",
    )


def _typed(schema: dict[str, Any]) -> dict[str, Any]:
    """One of /v2/schemas' schemas, which (as Glance's) leave out that they describe objects."""
    return {"type": "object", **schema}


def component_schemas() -> dict[str, dict[str, Any]]:
    return {
        "Error": _error(),
        "Versions": _versions(),
        "Image": _typed(image_schema()),
        "Images": _typed(images_schema()),
        "ImagePatch": _image_patch(legacy=False),
        "ImagePatchV20": _image_patch(legacy=True),
        "Location": _location(),
        "NewLocation": _new_location(),
        "Member": _typed(member_schema()),
        "Members": _typed(members_schema()),
        "NewMember": _object(
            {"member": string(minLength=1, maxLength=MAX_MEMBER_LENGTH)}, "member"
        ),
        "MemberStatus": _object({"status": member_schema()["properties"]["status"]}, "status"),
        "ImportRequest": _import_request(),
        "ImportInfo": _import_info(),
        "Task": _typed(task_schema()),
        "Tasks": _typed(tasks_schema()),
        "NewTask": _new_task(),
        "ImageTasks": _object({"tasks": _array(ref("Task"))}, "tasks"),
        "Stores": _stores(detail=False),
        "StoresDetail": _stores(detail=True),
        "Usage": _usage(),
        "CacheState": _cache_state(nodes=False),
        "CacheNodes": _cache_state(nodes=True),
        **metadef_schemas(),
    }
