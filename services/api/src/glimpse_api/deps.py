"""Request dependencies: the caller's context and the services, as Annotated types."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from glimpse.config import Settings
from glimpse.context import RequestContext, new_request_id
from glimpse.db.engine import Database
from glimpse.logs import bind_identity
from glimpse.services.image_data import ImageDataService
from glimpse.services.images import ImageService
from glimpse.stores.registry import StoreRegistry
from glimpse_api.identity import Authenticator, build_authenticator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything built once per process in the lifespan and shared by requests."""

    settings: Settings
    database: Database
    stores: StoreRegistry
    images: ImageService
    image_data: ImageDataService
    authenticator: Authenticator

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        database = Database.from_settings(settings)
        stores = StoreRegistry.from_settings(settings)
        return cls(
            settings=settings,
            database=database,
            stores=stores,
            images=ImageService(settings, database, stores),
            image_data=ImageDataService(settings, database, stores),
            authenticator=build_authenticator(settings),
        )

    async def aclose(self) -> None:
        await self.authenticator.aclose()
        await self.stores.aclose()
        await self.database.dispose()


# Dependencies are `async def` so FastAPI calls them on the event loop, not in a thread.
def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_context(request: Request) -> RequestContext:
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    context = await _runtime(request).authenticator.authenticate(request, request_id)
    bind_identity(context.user_id, context.project_id)
    log.debug("%s %s with roles %s", request.method, request.url.path, sorted(context.roles))
    return context


async def get_settings(request: Request) -> Settings:
    return _runtime(request).settings


async def get_image_service(request: Request) -> ImageService:
    return _runtime(request).images


async def get_image_data_service(request: Request) -> ImageDataService:
    return _runtime(request).image_data


ContextDep = Annotated[RequestContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ImageServiceDep = Annotated[ImageService, Depends(get_image_service)]
ImageDataServiceDep = Annotated[ImageDataService, Depends(get_image_data_service)]
