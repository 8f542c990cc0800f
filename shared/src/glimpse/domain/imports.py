"""The contract between the API and the worker for an interoperable import.

`ImportRequest` is what a POST /v2/images/{id}/import asks for, parsed once from its body (with
Glance's error messages) and stored in the task row as `import_req`; `ImportTaskInput` is the
whole task input the worker reads back. Both are frozen: admission returns a new request
rather than changing the one it was given. The JSON stored in the task row keeps its format,
so rows written by earlier releases (and by the Tasks API's `import`) still parse.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from glimpse.domain.errors import InvalidInput
from glimpse.domain.redaction import redact_url
from glimpse.domain.tasks import (
    GLANCE_DOWNLOAD,
    IMPLEMENTED_METHODS,
    TASK_TYPE_LEGACY_IMPORT,
    WEB_DOWNLOAD,
)

# Task input the tasks API never shows: the caller's token, Fernet-sealed with [key_manager]
# token_encryption_key (for glance-download and for a signed image's verification; dropped
# when the task ends), and what a glance-download changed of the image's metadata, so that a
# failure can put it back (the worker writes it).
USER_TOKEN: Final = "user_token"  # noqa: S105 -- a key's name, not a secret
METADATA_BEFORE: Final = "glance_download_before"
DEFAULT_INTERFACE: Final = "public"


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What this deployment offers an import request."""

    methods: tuple[str, ...]  # enabled_import_methods
    multistore: bool
    default_store: str
    writable: tuple[str, ...]  # the enabled stores that take writes, for all_stores


@dataclass(frozen=True, slots=True)
class GlanceSource:
    """glance-download's source: an image of another region's image service."""

    image_id: str
    region: str
    interface: str = DEFAULT_INTERFACE

    @classmethod
    def from_method(cls, method: Mapping[str, Any]) -> GlanceSource:
        """The checked glance-download parameters of a request's `method`, or 400."""
        for required in ("glance_region", "glance_image_id"):
            if required not in method:
                raise InvalidInput(
                    f"'{required}' needs to be set for glance-download import method"
                )
            if not isinstance(method[required], str):
                raise InvalidInput(f"'{required}' must be a string")
        image_id = method["glance_image_id"]
        try:
            uuid.UUID(image_id)
        except ValueError:
            # "image id does not look like a UUID" is what clients (tempest) look for.
            raise InvalidInput(f"Remote image id does not look like a UUID: {image_id}") from None
        interface = method.get("glance_service_interface", DEFAULT_INTERFACE)
        if not isinstance(interface, str):
            raise InvalidInput("'glance_service_interface' must be a string")
        return cls(image_id, method["glance_region"], interface)

    @classmethod
    def from_json(cls, method: Mapping[str, Any]) -> GlanceSource | None:
        """A stored method's source; None when it names none (the worker then fails)."""
        image_id, region = method.get("glance_image_id"), method.get("glance_region")
        interface = method.get("glance_service_interface", DEFAULT_INTERFACE)
        if not isinstance(image_id, str) or not isinstance(region, str):
            return None
        return cls(image_id, region, interface if isinstance(interface, str) else DEFAULT_INTERFACE)

    def to_json(self) -> dict[str, str]:
        return {
            "glance_image_id": self.image_id,
            "glance_region": self.region,
            "glance_service_interface": self.interface,
        }


@dataclass(frozen=True, slots=True)
class ImportMethod:
    """The request's `method`: its name and the inputs of that method."""

    name: str
    uri: str | None = None  # web-download's source
    glance: GlanceSource | None = None  # glance-download's source

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"name": self.name}
        if self.uri is not None:
            shown["uri"] = self.uri
        if self.glance is not None:
            shown.update(self.glance.to_json())
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
        uri, glance = None, None
        if name == WEB_DOWNLOAD:
            uri = body["method"].get("uri")
            if not isinstance(uri, str) or not uri:
                raise InvalidInput(refused_uri_message(uri))
        if name == GLANCE_DOWNLOAD:  # before the policy check, as in Glance
            glance = GlanceSource.from_method(body["method"])
        method = ImportMethod(name, uri, glance)
        return cls(method, stores, must_succeed, all_stores=all_stores)

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
                name if isinstance(name, str) else "",
                uri if isinstance(uri, str) else None,
                GlanceSource.from_json(method),
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
class MetadataBefore:
    """What a glance-download replaced of the image's metadata (None: it had none)."""

    disk_format: str | None
    container_format: str | None
    properties: Mapping[str, str | None]

    @classmethod
    def from_json(cls, data: object) -> MetadataBefore | None:
        if not isinstance(data, Mapping):
            return None
        disk, container = data.get("disk_format"), data.get("container_format")
        kept = data.get("properties")
        kept = kept if isinstance(kept, Mapping) else {}
        return cls(
            disk if isinstance(disk, str) else None,
            container if isinstance(container, str) else None,
            {
                key: value
                for key, value in kept.items()
                if isinstance(key, str) and (value is None or isinstance(value, str))
            },
        )

    def keeping(self, properties: Mapping[str, str | None]) -> MetadataBefore:
        """These too, unless kept already (a re-run keeps what the first run found)."""
        return replace(self, properties={**properties, **self.properties})

    def to_json(self) -> dict[str, Any]:
        return {
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "properties": dict(self.properties),
        }


@dataclass(frozen=True, slots=True)
class ImportTaskInput:
    """An import task's input, as stored in its row."""

    image_id: str | None
    request: ImportRequest
    # The stores the task was admitted to write; None for a Tasks API import, whose input
    # names none (it writes the default store).
    backend: tuple[str, ...] | None
    user_roles: tuple[str, ...] = ()  # the caller's, for inject_image_metadata
    user_token: str | None = None  # the caller's, sealed (USER_TOKEN)
    metadata_before: MetadataBefore | None = None  # written by a glance-download's worker

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
        token = task_input.get(USER_TOKEN)
        return cls(
            image_id,
            ImportRequest.from_json(task_input.get("import_req")),
            backend=_strings(backend) if isinstance(backend, list) else None,
            user_roles=_strings(task_input.get("user_roles")),
            user_token=token if isinstance(token, str) else None,
            metadata_before=MetadataBefore.from_json(task_input.get(METADATA_BEFORE)),
        )

    def to_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "image_id": self.image_id,
            "import_req": self.request.to_json(),
            "backend": list(self.backend) if self.backend is not None else None,
            "user_roles": list(self.user_roles),
        }
        if self.user_token is not None:
            stored[USER_TOKEN] = self.user_token
        if self.metadata_before is not None:
            stored[METADATA_BEFORE] = self.metadata_before.to_json()
        return stored

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
