"""The common first step of every image use case: load the image, then check policy."""

from __future__ import annotations

from glimpse.context import RequestContext
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image
from glimpse.domain import policy
from glimpse.domain.errors import GlimpseError, ImageNotFound


async def authorized_image(
    repo: ImageRepository,
    ctx: RequestContext,
    image_id: str,
    action: str,
    *,
    lock: bool = False,
    missing: GlimpseError | None = None,
) -> Image:
    """The live image `image_id` if `ctx` may do `action` to it (a hidden one is not found)."""
    image = await repo.get(image_id, lock=lock)
    if image is None:
        raise missing or ImageNotFound(image_id)
    policy.enforce(ctx, action, image)
    return image
