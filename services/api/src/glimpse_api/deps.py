"""Request dependencies: the caller's context and the services, as Annotated types."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from glimpse.config import Settings
from glimpse.context import RequestContext, new_request_id
from glimpse.db.engine import Database
from glimpse.domain.policy import PolicyEngine
from glimpse.jobs.publisher import JobPublisher
from glimpse.logs import bind_identity
from glimpse.services.cache_api import CacheService
from glimpse.services.discovery import DiscoveryService
from glimpse.services.health import HealthService, ReadinessService
from glimpse.services.image_cache import ImageCache
from glimpse.services.image_data import ImageDataService
from glimpse.services.images import ImageService
from glimpse.services.imports import ImportService
from glimpse.services.legacy_tasks import LegacyTaskService
from glimpse.services.location_import import LocationImportService
from glimpse.services.locations import LocationService
from glimpse.services.members import MemberService
from glimpse.services.metadefs import MetadefServices
from glimpse.services.tasks import TaskService
from glimpse.stores.registry import StoreRegistry
from glimpse_api.identity import Authenticator, build_authenticator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApiRuntime:
    """Everything built once per process in the lifespan and shared by requests."""

    settings: Settings
    database: Database
    stores: StoreRegistry
    policy: PolicyEngine
    images: ImageService
    image_data: ImageDataService
    locations: LocationService
    location_imports: LocationImportService
    discovery: DiscoveryService
    members: MemberService
    tasks: TaskService
    imports: ImportService
    legacy_tasks: LegacyTaskService
    metadefs: MetadefServices
    publisher: JobPublisher
    authenticator: Authenticator
    health: HealthService
    readiness: ReadinessService
    cache: ImageCache | None
    cache_api: CacheService

    @classmethod
    def build(cls, settings: Settings) -> ApiRuntime:
        # The policy first: a bad policy file stops start-up before anything is opened.
        policy = PolicyEngine(
            settings.oslo_policy.policy_file,
            enforce_new_defaults=settings.oslo_policy.enforce_new_defaults,
        )
        database = Database.from_settings(settings)
        stores = StoreRegistry.from_settings(settings)
        locations = LocationService(settings, database, stores)
        publisher = JobPublisher(settings)
        health = HealthService(settings)
        cache = ImageCache(settings, database) if settings.cache_enabled else None
        image_data = ImageDataService(settings, database, stores, cache)
        return cls(
            settings=settings,
            database=database,
            stores=stores,
            policy=policy,
            images=ImageService(settings, database, stores, locations, cache),
            image_data=image_data,
            locations=locations,
            location_imports=LocationImportService(settings, database, stores, publisher),
            discovery=DiscoveryService(settings, database, stores),
            members=MemberService(settings, database),
            tasks=TaskService(settings, database),
            imports=ImportService(settings, database, stores, publisher),
            legacy_tasks=LegacyTaskService(settings, database, stores, publisher),
            metadefs=MetadefServices.build(database),
            publisher=publisher,
            authenticator=build_authenticator(settings),
            health=health,
            readiness=ReadinessService(health, database, publisher),
            cache=cache,
            cache_api=CacheService(settings, database, cache, image_data.load_for_prefetch),
        )

    async def aclose(self) -> None:
        await self.cache_api.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self.authenticator.aclose()
        await self.publisher.aclose()
        await self.stores.aclose()
        await self.database.dispose()


def runtime_of(request: Request) -> ApiRuntime:
    """The process's runtime, for a route that reads services without dependencies."""
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


# Dependencies are `async def` so FastAPI calls them on the event loop, not in a thread.
async def get_context(request: Request) -> RequestContext:
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    runtime = runtime_of(request)
    identity = await runtime.authenticator.authenticate(request, request_id)
    context = runtime.policy.bind(identity)
    bind_identity(context.user_id, context.project_id)
    if log.isEnabledFor(logging.DEBUG):  # request.url and the sort cost on every request
        log.debug("%s %s with roles %s", request.method, request.url.path, sorted(context.roles))
    return context


async def get_settings(request: Request) -> Settings:
    return runtime_of(request).settings


async def get_image_service(request: Request) -> ImageService:
    return runtime_of(request).images


async def get_image_data_service(request: Request) -> ImageDataService:
    return runtime_of(request).image_data


async def get_location_service(request: Request) -> LocationService:
    return runtime_of(request).locations


async def get_location_import_service(request: Request) -> LocationImportService:
    return runtime_of(request).location_imports


async def get_discovery_service(request: Request) -> DiscoveryService:
    return runtime_of(request).discovery


async def get_member_service(request: Request) -> MemberService:
    return runtime_of(request).members


ContextDep = Annotated[RequestContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]
ImageDataServiceDep = Annotated[ImageDataService, Depends(get_image_data_service)]
LocationServiceDep = Annotated[LocationService, Depends(get_location_service)]
LocationImportServiceDep = Annotated[LocationImportService, Depends(get_location_import_service)]
DiscoveryServiceDep = Annotated[DiscoveryService, Depends(get_discovery_service)]

MemberServiceDep = Annotated[MemberService, Depends(get_member_service)]


async def get_task_service(request: Request) -> TaskService:
    return runtime_of(request).tasks


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


async def get_import_service(request: Request) -> ImportService:
    return runtime_of(request).imports


ImportServiceDep = Annotated[ImportService, Depends(get_import_service)]


async def get_legacy_task_service(request: Request) -> LegacyTaskService:
    return runtime_of(request).legacy_tasks


LegacyTaskServiceDep = Annotated[LegacyTaskService, Depends(get_legacy_task_service)]


async def get_metadef_services(request: Request) -> MetadefServices:
    return runtime_of(request).metadefs


MetadefsDep = Annotated[MetadefServices, Depends(get_metadef_services)]


async def get_health_service(request: Request) -> HealthService:
    return runtime_of(request).health


HealthServiceDep = Annotated[HealthService, Depends(get_health_service)]


async def get_readiness_service(request: Request) -> ReadinessService:
    return runtime_of(request).readiness


ReadinessServiceDep = Annotated[ReadinessService, Depends(get_readiness_service)]


async def get_cache_service(request: Request) -> CacheService:
    return runtime_of(request).cache_api


CacheServiceDep = Annotated[CacheService, Depends(get_cache_service)]
