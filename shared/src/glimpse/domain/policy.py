"""The one place that decides who may do what to an image.

Rules are data keyed by Glance's policy names, evaluated at the entry of each service use case.
This first cut knows owner and admin; the full rule set arrives with the identity work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from glimpse.context import RequestContext
from glimpse.domain.errors import Forbidden, ImageNotFound
from glimpse.domain.images import Visibility


class ImageLike(Protocol):
    id: str
    owner: str | None
    visibility: str


Rule = Callable[[RequestContext, ImageLike | None], bool]


def _admin(ctx: RequestContext, _image: ImageLike | None) -> bool:
    return ctx.is_admin


def _owner_or_admin(ctx: RequestContext, image: ImageLike | None) -> bool:
    return ctx.is_admin or (image is not None and image.owner == ctx.project_id)


def _reader(ctx: RequestContext, image: ImageLike | None) -> bool:
    if image is None or _owner_or_admin(ctx, image):
        return True
    return image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY)


def _admin_or_service(ctx: RequestContext, _image: ImageLike | None) -> bool:
    return ctx.is_admin or "service" in ctx.roles


def _service_or_owner(ctx: RequestContext, image: ImageLike | None) -> bool:
    return _admin_or_service(ctx, image) or _owner_or_admin(ctx, image)


def _anyone(_ctx: RequestContext, _image: ImageLike | None) -> bool:
    return True


RULES: Final[dict[str, Rule]] = {
    "get_images": _anyone,
    "get_image": _reader,
    "download_image": _reader,
    "download_from_store": _reader,
    "add_image": _anyone,
    "modify_image": _owner_or_admin,
    "upload_image": _owner_or_admin,
    "delete_image": _owner_or_admin,
    "publicize_image": _admin,
    "communitize_image": _owner_or_admin,
    "set_image_owner": _admin,
    "get_image_location": _owner_or_admin,
    "delete_image_location": _admin,
    "set_image_location": _owner_or_admin,
    "add_image_location": _service_or_owner,
    "fetch_image_location": _admin_or_service,
    "stores_info_detail": _admin_or_service,
}


def allowed(ctx: RequestContext, action: str, image: ImageLike | None = None) -> bool:
    return RULES[action](ctx, image)


def enforce(ctx: RequestContext, action: str, image: ImageLike | None = None) -> None:
    """Raise if `ctx` may not do `action`; a failed read hides the image (404, never 403)."""
    if image is not None and not allowed(ctx, "get_image", image):
        raise ImageNotFound(image.id)
    if not allowed(ctx, action, image):
        raise Forbidden(f"You are not authorized to complete {action} action.")
