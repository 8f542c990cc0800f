"""The common first step of every image use case: load the image, then check policy."""

from __future__ import annotations

from glimpse.context import RequestContext
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.members import MemberRepository
from glimpse.db.tables import Image
from glimpse.domain import policy
from glimpse.domain.errors import GlimpseError, ImageNotFound
from glimpse.domain.images import Visibility


async def membership(repo: ImageRepository, ctx: RequestContext, image: Image) -> str | None:
    """The caller's member status on `image`; only shared images of other projects have one
    that matters to policy."""
    if image.visibility != Visibility.SHARED or image.owner == ctx.project_id:
        return None
    return await MemberRepository(repo.session).status_of(image.id, ctx.project_id)


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
    status = await membership(repo, ctx, image)
    return enforce_on(ctx, image, image_id, action, status=status, missing=missing)


def enforce_on(
    ctx: RequestContext,
    image: Image,
    image_id: str,
    action: str,
    *,
    status: str | None,
    missing: GlimpseError | None = None,
) -> Image:
    """authorized_image's policy check, given the caller's member status on the image (a
    hidden image is not found)."""
    try:
        policy.enforce(ctx, action, image, member_status=status)
    except ImageNotFound:
        raise missing or ImageNotFound(image_id) from None
    return image


async def authorize(repo: ImageRepository, ctx: RequestContext, image: Image, action: str) -> None:
    """A further check on an image already loaded with authorized_image."""
    policy.enforce(ctx, action, image, member_status=await membership(repo, ctx, image))
