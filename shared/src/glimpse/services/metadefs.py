"""The metadata definitions use cases, built together once per process."""

from __future__ import annotations

from dataclasses import dataclass

from glimpse.db.engine import Database
from glimpse.services.metadef_namespaces import MetadefNamespaceService
from glimpse.services.metadef_objects import MetadefObjectService, MetadefPropertyService
from glimpse.services.metadef_tags import MetadefResourceTypeService, MetadefTagService


@dataclass(frozen=True, slots=True)
class MetadefServices:
    namespaces: MetadefNamespaceService
    objects: MetadefObjectService
    properties: MetadefPropertyService
    tags: MetadefTagService
    resource_types: MetadefResourceTypeService

    @classmethod
    def build(cls, database: Database) -> MetadefServices:
        return cls(
            namespaces=MetadefNamespaceService(database),
            objects=MetadefObjectService(database),
            properties=MetadefPropertyService(database),
            tags=MetadefTagService(database),
            resource_types=MetadefResourceTypeService(database),
        )
