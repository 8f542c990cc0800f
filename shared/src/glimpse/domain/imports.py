"""The contract between the API and the worker for an interoperable import.

`ImportRequest` is what a POST /v2/images/{id}/import asks for, parsed once from its body (with
Glance's error messages) and stored in the task row as `import_req`; `ImportTaskInput` is the
whole task input the worker reads back. Both are frozen: admission returns a new request
rather than changing the one it was given. The JSON stored in the task row keeps its format,
so rows written by earlier releases (and by the Tasks API's `import`) still parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from glimpse.domain.errors import InvalidInput
from glimpse.domain.redaction import redact_url
from glimpse.domain.tasks import IMPLEMENTED_METHODS, TASK_TYPE_LEGACY_IMPORT, WEB_DOWNLOAD


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What this deployment offers an import request."""

    methods: tuple[str, ...]  # enabled_import_methods
    multistore: bool
    default_store: str
    writable: tuple[str, ...]  # the enabled stores that take writes, for all_stores


@dataclass(frozen=True, slots=True)
class ImportMethod:
    """The request's `method`: its name and the inputs of that method."""

    name: str
    uri: str | None = None  # web-download's source

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"name": self.name}
        if self.uri is not None:
            shown["uri"] = self.uri
        return shown


@dataclass(frozen=True, slots=True)
class ImportRequest:
    method: ImportMethod
    stores: tuple[str, ...] = ()  # the target stores, resolved (no duplicates)
    all_stores_must_succeed: bool = True
    # The caller asked for every store (a copy then skips those holding the image already).
    # Admission's concern only: the task row records the stores it resolved to.
    all_stores: bool = False

    @classmethod
    def from_body(
        cls, body: Mapping[str, Any], header_store: str | None, options: ImportOptions
    ) -> ImportRequest:
        """Parse a POST /import body (and its X-Image-Meta-Store header), checking it in
        Glance's order; InvalidInput with Glance's messages otherwise."""
        name = _method_name(body, options)
        all_stores = body.get("all_stores", False)
        if not isinstance(all_stores, bool):
            raise InvalidInput("all_stores must be a boolean.")
        stores = _targets(body.get("stores"), all_stores, header_store, options)
        must_succeed = body.get("all_stores_must_succeed", True)
        if not isinstance(must_succeed, bool):
            raise InvalidInput("all_stores_must_succeed must be a boolean.")
        uri = None
        if name == WEB_DOWNLOAD:
            uri = body["method"].get("uri")
            if not isinstance(uri, str) or not uri:
                raise InvalidInput(refused_uri_message(uri))
        return cls(ImportMethod(name, uri), stores, must_succeed, all_stores=all_stores)

    @classmethod
    def from_json(cls, data: object) -> ImportRequest:
        """A stored `import_req`; lenient, as rows are never rewritten (a missing or odd
        value reads as its default, and the worker refuses a method it cannot run)."""
        request = data if isinstance(data, Mapping) else {}
        method = request.get("method")
        method = method if isinstance(method, Mapping) else {}
        name, uri = method.get("name"), method.get("uri")
        stores = request.get("stores")
        return cls(
            ImportMethod(
                name if isinstance(name, str) else "", uri if isinstance(uri, str) else None
            ),
            _strings(stores),
            bool(request.get("all_stores_must_succeed", True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method.to_json(),
            "stores": list(self.stores),
            "all_stores_must_succeed": self.all_stores_must_succeed,
        }

    def with_stores(self, stores: tuple[str, ...]) -> ImportRequest:
        return replace(self, stores=stores)


@dataclass(frozen=True, slots=True)
class ImportTaskInput:
    """An import task's input, as stored in its row."""

    image_id: str | None
    request: ImportRequest
    # The stores the task was admitted to write; None for a Tasks API import, whose input
    # names none (it writes the default store).
    backend: tuple[str, ...] | None
    user_roles: tuple[str, ...] = ()  # the caller's, for inject_image_metadata

    @classmethod
    def from_task(cls, task_type: str, task_input: Mapping[str, Any]) -> ImportTaskInput:
        """Parse a task row's input. A Tasks API import keeps the input its caller wrote: it
        stands for a web-download of its `import_from`."""
        image_id = task_input.get("image_id")
        image_id = image_id if isinstance(image_id, str) else None
        if task_type == TASK_TYPE_LEGACY_IMPORT:
            uri = task_input.get("import_from")
            method = ImportMethod(WEB_DOWNLOAD, uri if isinstance(uri, str) else None)
            return cls(image_id, ImportRequest(method), backend=None)
        backend = task_input.get("backend")
        return cls(
            image_id,
            ImportRequest.from_json(task_input.get("import_req")),
            backend=_strings(backend) if isinstance(backend, list) else None,
            user_roles=_strings(task_input.get("user_roles")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "import_req": self.request.to_json(),
            "backend": list(self.backend) if self.backend is not None else None,
            "user_roles": list(self.user_roles),
        }

    def targets(self, default_store: str) -> tuple[str, ...]:
        """The stores this task writes: a location in one of them is its own."""
        return self.backend if self.backend is not None else (default_store,)


def refused_uri_message(uri: object) -> str:
    return f"URI for web-download does not pass filtering: {redact_url(str(uri))}"


def _method_name(body: Mapping[str, Any], options: ImportOptions) -> str:
    method = body.get("method")
    name = method.get("name") if isinstance(method, dict) else None
    if not isinstance(name, str):
        raise InvalidInput("Import request requires a 'method' field with a 'name'.")
    if name not in options.methods:
        raise InvalidInput(f"Import method {name} is not enabled.")
    if name not in IMPLEMENTED_METHODS:
        raise InvalidInput(f"Import method {name} is not available in this release.")
    return name


def _targets(
    stores: object, all_stores: bool, header_store: str | None, options: ImportOptions
) -> tuple[str, ...]:
    """The stores the request names (the service checks them against the enabled ones).
    Without multi-store, as in Glance, `stores` and X-Image-Meta-Store are ignored."""
    if not options.multistore:
        return (options.default_store,)
    if stores is not None and header_store is not None:
        raise InvalidInput("Only one of X-Image-Meta-Store header or stores may be given.")
    if all_stores:
        if stores or header_store is not None:
            raise InvalidInput(
                "all_stores cannot be given with stores or the X-Image-Meta-Store header."
            )
        return options.writable
    wanted = stores if stores is not None else [header_store or options.default_store]
    if not wanted or not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
        raise InvalidInput("stores must be a non-empty list of store identifiers.")
    return tuple(dict.fromkeys(wanted))


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()
