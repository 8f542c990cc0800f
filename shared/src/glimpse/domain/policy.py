"""The one place that decides who may do what to an image.

Rules are data keyed by Glance's policy names, evaluated at the entry of each service use case.
This first cut knows owner, member project and admin; the full rule set arrives with the
policy engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from glimpse.context import RequestContext
from glimpse.domain.errors import Forbidden, ImageNotFound
from glimpse.domain.images import Visibility


class ImageLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def visibility(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What a rule looks at: the image (or the one being proposed) and the caller's
    membership of it."""

    owner: str | None
    visibility: str
    image_id: str | None = None  # None: a proposed image, not created yet
    member_status: str | None = None  # the caller's membership status, None if not a member

    @property
    def exists(self) -> bool:
        return self.image_id is not None


def proposed(owner: str | None, visibility: str) -> Target:
    """The target of add_image and friends: an image that does not exist yet."""
    return Target(owner=owner, visibility=visibility)


def target_of(image: ImageLike | Target, member_status: str | None = None) -> Target:
    if isinstance(image, Target):
        return image
    return Target(image.owner, image.visibility, image.id, member_status)


def visible(ctx: RequestContext, target: Target) -> bool:
    """Whether the image exists for the caller at all (Glance's database-layer rule, which no
    policy file changes): admins, public and community images, the owner, and for shared
    images the member projects (whatever their answer)."""
    if ctx.is_admin or target.owner is None:
        return True
    if target.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    if ctx.project_id is not None and ctx.project_id == target.owner:
        return True
    return target.visibility == Visibility.SHARED and target.member_status is not None


Rule = Callable[[RequestContext, Target | None], bool]


def _admin(ctx: RequestContext, _target: Target | None) -> bool:
    return ctx.is_admin


def _owner_or_admin(ctx: RequestContext, target: Target | None) -> bool:
    return ctx.is_admin or (target is not None and target.owner == ctx.project_id)


def _member_project(ctx: RequestContext, target: Target | None) -> bool:
    return ctx.is_admin or (target is not None and target.member_status is not None)


def _owner_or_member_project(ctx: RequestContext, target: Target | None) -> bool:
    return _owner_or_admin(ctx, target) or _member_project(ctx, target)


def _anyone(_ctx: RequestContext, _target: Target | None) -> bool:
    return True


RULES: Final[dict[str, Rule]] = {
    "get_images": _anyone,
    "get_image": _anyone,
    "download_image": _anyone,
    "add_image": _owner_or_admin,
    "modify_image": _owner_or_admin,
    "upload_image": _owner_or_admin,
    "delete_image": _owner_or_admin,
    "publicize_image": _admin,
    "communitize_image": _owner_or_admin,
    "deactivate": _owner_or_admin,
    "reactivate": _owner_or_admin,
    "add_member": _owner_or_admin,
    "delete_member": _owner_or_admin,
    "get_member": _owner_or_member_project,
    "get_members": _owner_or_member_project,
    "modify_member": _member_project,
}


def allowed(
    ctx: RequestContext,
    action: str,
    image: ImageLike | Target | None = None,
    *,
    member_status: str | None = None,
) -> bool:
    target = None if image is None else target_of(image, member_status)
    if target is not None and target.exists and not visible(ctx, target):
        return False
    return RULES[action](ctx, target)


def enforce(
    ctx: RequestContext,
    action: str,
    image: ImageLike | Target | None = None,
    *,
    member_status: str | None = None,
) -> None:
    """Raise if `ctx` may not do `action`; a failed read hides the image (404, never 403)."""
    target = None if image is None else target_of(image, member_status)
    if target is not None and target.exists and not allowed(ctx, "get_image", target):
        raise ImageNotFound(target.image_id or "")
    if not allowed(ctx, action, target):
        raise Forbidden(f"You are not authorized to complete {action} action.")
