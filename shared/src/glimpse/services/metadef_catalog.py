"""The definition files: `glimpse-manage db load_metadefs / unload_metadefs / export_metadefs`.

Files are in Glance's format (one namespace per *.json file, as Glance's etc/metadefs holds),
so Glance's own definition directories load unchanged. Every file is read and checked before
anything is written, and a load is one transaction: a bad file loads nothing.

Loading a namespace that is already in the database (Glance's rules since Pike):
- without `merge` it is skipped, whatever the file says;
- `merge` adds what the file has and the database lacks (associations, properties, objects,
  tags), and keeps what the database has, changed or not, including what was added through
  the API;
- `merge` + `prefer_new` also replaces the namespace's attributes and every item the file
  names with the file's version; items only the database has are kept;
- `merge` + `overwrite` deletes the namespace and everything in it, then loads the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from glimpse.db.engine import Database
from glimpse.db.metadef_tables import MetadefNamespace
from glimpse.db.repositories.metadefs import MetadefRepository
from glimpse.domain.errors import GlimpseError, InvalidInput
from glimpse.domain.metadefs import NamespaceDocument, parse_namespace

# The owner of a loaded namespace whose file names none, as Glance's loader has it.
DEFAULT_OWNER: Final = "admin"
_FILE_NAME_JUNK: Final = re.compile(r"[\W_]+", re.UNICODE)
# Keys of a file that may be JSON null (Glance's exports write them so); null means absent.
_NULLABLE: Final = frozenset(
    {"display_name", "description", "visibility", "protected", "owner", "prefix"}
    | {"properties_target", "required"}
)


class DefinitionError(InvalidInput):
    """A definition file cannot be loaded, or the options make no sense."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    merge: bool = False
    prefer_new: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if (self.prefer_new or self.overwrite) and not self.merge:
            raise DefinitionError("--prefer_new and --overwrite only go with --merge.")
        if self.prefer_new and self.overwrite:
            raise DefinitionError("Give at most one of --prefer_new and --overwrite.")


@dataclass(frozen=True, slots=True)
class DefinitionFile:
    path: Path
    document: NamespaceDocument


@dataclass(slots=True)
class LoadReport:
    created: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _without_nulls(value: Any) -> Any:  # noqa: ANN401 -- any JSON document
    """The file without null optional attributes, at any depth of namespace, association and
    object (property definitions are kept as they are)."""
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned = {}
    for key, item in value.items():
        if item is None and key in _NULLABLE:
            continue
        cleaned[key] = item if key == "properties" else _without_nulls(item)
    return cleaned


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DefinitionError(f"No such file or directory: {path}")
    files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise DefinitionError(f"No definition files (*.json) in {path}")
    return files


def read_definitions(path: Path) -> list[DefinitionFile]:
    """Every definition file at `path` (a file, or a directory's *.json files), checked;
    all problems are reported at once."""
    loaded: list[DefinitionFile] = []
    problems: list[str] = []
    owners: dict[str, Path] = {}
    for file in _files(path):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            document = parse_namespace(_without_nulls(data), ignore_read_only=True)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{file}: {exc}")
            continue
        except GlimpseError as exc:
            problems.append(f"{file}: {exc.message}")
            continue
        name = document.fields.namespace
        if name in owners:
            problems.append(f"{file}: namespace {name} is also defined in {owners[name]}")
            continue
        owners[name] = file
        loaded.append(DefinitionFile(file, document))
    if problems:
        raise DefinitionError("\n".join(problems))
    return loaded


async def _merge_contents(
    repo: MetadefRepository, row: MetadefNamespace, document: NamespaceDocument, *, prefer_new: bool
) -> None:
    """Add what the database lacks; with `prefer_new`, replace what it has by the file's."""
    namespace_id = row.id
    assert namespace_id is not None  # noqa: S101 -- a stored row
    for association in document.associations:
        found = await repo.association(namespace_id, association.name)
        if found is None:
            # Resource types that come with definition files are the system's own.
            await repo.add_association(namespace_id, association, protected_type=True)
        elif prefer_new:
            await repo.update_association(found, association)
    for prop in document.properties:
        found_property = await repo.property(namespace_id, prop.name)
        if found_property is None:
            await repo.add_property(namespace_id, prop)
        elif prefer_new:
            await repo.replace_property(found_property, prop)
    await _merge_objects_and_tags(repo, namespace_id, document, prefer_new=prefer_new)


async def _merge_objects_and_tags(
    repo: MetadefRepository, namespace_id: int, document: NamespaceDocument, *, prefer_new: bool
) -> None:
    for definition in document.objects:
        found_object = await repo.object(namespace_id, definition.name)
        if found_object is None:
            await repo.add_object(namespace_id, definition)
        elif prefer_new:
            await repo.replace_object(found_object, definition)
    for tag in document.tags:
        found_tag = await repo.tag(namespace_id, tag)
        if found_tag is None:
            await repo.add_tag(namespace_id, tag)
        elif prefer_new:
            await repo.touch_tag(found_tag)


async def load(database: Database, files: list[DefinitionFile], options: LoadOptions) -> LoadReport:
    report = LoadReport()
    async with database.write() as session:
        repo = MetadefRepository(session)
        for file in files:
            fields = file.document.fields
            owner = fields.owner or DEFAULT_OWNER
            existing = await repo.namespace(fields.namespace, lock=True)
            if existing is not None and options.overwrite:
                await repo.delete_namespace(existing)
                report.overwritten.append(fields.namespace)
                existing = None
            elif existing is not None and not options.merge:
                report.skipped.append(fields.namespace)
                continue
            if existing is None:
                row = await repo.add_namespace(fields, owner)
                if fields.namespace not in report.overwritten:
                    report.created.append(fields.namespace)
            else:
                row = existing
                if options.prefer_new:
                    await repo.update_namespace(row, fields, owner)
                report.merged.append(fields.namespace)
            await _merge_contents(repo, row, file.document, prefer_new=options.prefer_new)
    return report


async def is_empty(database: Database) -> bool:
    async with database.read() as session:
        return await MetadefRepository(session).count_namespaces() == 0


async def unload(database: Database) -> int:
    """Delete every namespace (those created through the API too) and resource type."""
    async with database.write() as session:
        repo = MetadefRepository(session)
        count = await repo.count_namespaces()
        await repo.delete_everything()
        return count


def _document(
    row: MetadefNamespace,
    associations: list[dict[str, Any]],
    properties: dict[str, Any],
    objects: list[dict[str, Any]],
    tags: list[str],
) -> dict[str, Any]:
    document: dict[str, Any] = {"namespace": row.namespace}
    if row.display_name is not None:
        document["display_name"] = row.display_name
    if row.description is not None:
        document["description"] = row.description
    document.update(
        {
            "visibility": row.visibility,
            "protected": row.protected,
            "owner": row.owner,
            "resource_type_associations": associations,
            "properties": properties,
            "objects": objects,
            "tags": [{"name": tag} for tag in tags],
        }
    )
    return document


def _file_name(row: MetadefNamespace, taken: set[str]) -> str:
    """Glance's naming (the display name without punctuation or spaces), made unique."""
    stem = _FILE_NAME_JUNK.sub("", row.display_name or "") or _FILE_NAME_JUNK.sub("", row.namespace)
    stem = stem or "namespace"
    name, counter = f"{stem}.json", 2
    while name in taken:
        name, counter = f"{stem}-{counter}.json", counter + 1
    taken.add(name)
    return name


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    Path(out.name).replace(path)


async def export(database: Database, path: Path) -> list[Path]:
    """Write every namespace to `path` (created if missing), one file each, in the format
    load reads; existing files of the same names are replaced."""
    documents: list[tuple[MetadefNamespace, dict[str, Any]]] = []
    async with database.read() as session:
        repo = MetadefRepository(session)
        for row in await repo.all_namespaces():
            associations = [
                {
                    key: value
                    for key, value in (
                        ("name", a.name),
                        ("prefix", a.prefix),
                        ("properties_target", a.properties_target),
                    )
                    if value is not None
                }
                for a in await repo.associations([row.id] if row.id else [])
            ]
            properties = {p.name: p.json_schema for p in await repo.properties(row.id)}
            objects = []
            for obj in await repo.objects(row.id):
                item: dict[str, Any] = {"name": obj.name}
                if obj.description is not None:
                    item["description"] = obj.description
                if obj.required:
                    item["required"] = obj.required
                item["properties"] = obj.json_schema
                objects.append(item)
            tags = [tag.name for tag in await repo.tags(row.id, sort_key="name", sort_dir="asc")]
            documents.append((row, _document(row, associations, properties, objects, tags)))
    return await asyncio.to_thread(_write_documents, path, documents)


def _write_documents(
    path: Path, documents: list[tuple[MetadefNamespace, dict[str, Any]]]
) -> list[Path]:
    path.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    taken: set[str] = set()
    for row, document in documents:
        target = path / _file_name(row, taken)
        _write_atomically(target, json.dumps(document, indent=4, ensure_ascii=False) + "\n")
        written.append(target)
    return written
