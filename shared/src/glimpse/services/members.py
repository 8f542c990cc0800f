"""Image member use cases: share a shared image with projects, and their answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.members import MemberRepository
from glimpse.db.tables import Image, ImageMember
from glimpse.domain import members, policy
from glimpse.domain.errors import Conflict, Forbidden, LimitExceeded, NotFound
from glimpse.domain.images import Visibility
from glimpse.services.access import authorized_image, membership


class MemberService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database

    @staticmethod
    async def _shared_image(
        repo: ImageRepository, ctx: RequestContext, image_id: str, refusal: str
    ) -> tuple[Image, str | None]:
        """The image (404 when the caller cannot see it), which must be shared; and the
        caller's own membership of it."""
        image = await authorized_image(repo, ctx, image_id, "get_image")
        if image.visibility != Visibility.SHARED:
            raise Forbidden(refusal)
        return image, await membership(repo, ctx, image)

    @staticmethod
    def _rows_seen_by(ctx: RequestContext, image: Image) -> str | None:
        """Whose membership rows the caller sees: all for the owner and admins, otherwise
        only the caller's own."""
        if ctx.is_admin or (ctx.project_id is not None and ctx.project_id == image.owner):
            return None
        return ctx.project_id or ""

    async def _member(
        self,
        repo: MemberRepository,
        ctx: RequestContext,
        image: Image,
        status: str | None,
        member_id: str,
    ) -> ImageMember:
        if not policy.allowed(ctx, "get_member", image, member_status=status):
            raise Forbidden(
                f"You are not authorized to lookup the members of the image {image.id}."
            )
        only = self._rows_seen_by(ctx, image)
        row = None if only not in (None, member_id) else await repo.get(image.id, member_id)
        if row is None:
            raise NotFound(f"{member_id} not found in the member list of the image {image.id}.")
        return row

    async def add(self, ctx: RequestContext, image_id: str, body: dict[str, Any]) -> ImageMember:
        member_id = members.validate_member(body)
        refusal = f"Not allowed to create members for image {image_id}."
        async with self.db.write() as session:
            images = ImageRepository(session)
            image, status = await self._shared_image(images, ctx, image_id, refusal)
            if not policy.allowed(ctx, "add_member", image, member_status=status):
                raise Forbidden(refusal)
            policy.legacy_check(ctx, "add_member", policy.target_of(image, status))
            repo = MemberRepository(session)
            attempted = await repo.count(image_id) + 1
            quota = self.settings.image_member_quota
            # A negative quota means unlimited, as in Glance.
            if 0 <= quota < attempted:
                raise LimitExceeded(
                    f"Image member limit exceeded for image {image_id}: The limit has been "
                    f"exceeded on the number of allowed image members for this image. "
                    f"Attempted: {attempted}, Maximum: {quota}"
                )
            duplicate = Conflict(f"Member {member_id} is duplicated for image {image_id}")
            if await repo.get(image_id, member_id) is not None:
                raise duplicate
            try:
                return await repo.add(image_id, member_id)
            except IntegrityError:
                # Another request added the same project a moment ago.
                raise duplicate from None

    async def list_members(self, ctx: RequestContext, image_id: str) -> list[ImageMember]:
        async with self.db.read() as session:
            images = ImageRepository(session)
            refusal = (
                f"Not allowed to list members for image {image_id}: "
                "Only shared images have members."
            )
            image, status = await self._shared_image(images, ctx, image_id, refusal)
            if not policy.allowed(ctx, "get_members", image, member_status=status):
                raise Forbidden(
                    f"Not allowed to list members for image {image_id}: You are not "
                    "authorized to complete get_members action."
                )
            if not policy.allowed(ctx, "get_member", image, member_status=status):
                return []
            return await MemberRepository(session).list_for(
                image_id, self._rows_seen_by(ctx, image)
            )

    async def get(self, ctx: RequestContext, image_id: str, member_id: str) -> ImageMember:
        async with self.db.read() as session:
            images = ImageRepository(session)
            try:
                image, status = await self._shared_image(
                    images, ctx, image_id, "Only shared images have members."
                )
                return await self._member(MemberRepository(session), ctx, image, status, member_id)
            except Forbidden as exc:
                # Glance answers every refusal on this read with 404.
                raise NotFound(exc.message) from None

    async def update(
        self, ctx: RequestContext, image_id: str, member_id: str, body: dict[str, Any]
    ) -> ImageMember:
        # A body without a status is refused at once; a wrong status only after the checks
        # below, in Glance's order.
        if "status" not in body:
            members.validate_status(body)
        refusal = f"Not allowed to update members for image {image_id}."
        async with self.db.write() as session:
            images = ImageRepository(session)
            image, status = await self._shared_image(images, ctx, image_id, refusal)
            repo = MemberRepository(session)
            row = await self._member(repo, ctx, image, status, member_id)
            if not policy.allowed(ctx, "modify_member", image, member_status=status):
                raise Forbidden(refusal)
            policy.legacy_check(ctx, "modify_member", policy.target_of(image, status))
            await repo.set_status(row, members.validate_status(body))
            return row

    async def remove(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        refusal = f"Not allowed to delete members for image {image_id}."
        async with self.db.write() as session:
            images = ImageRepository(session)
            image, status = await self._shared_image(images, ctx, image_id, refusal)
            repo = MemberRepository(session)
            row = await self._member(repo, ctx, image, status, member_id)
            if not policy.allowed(ctx, "delete_member", image, member_status=status):
                raise Forbidden(refusal)
            policy.legacy_check(ctx, "delete_member", policy.target_of(image, status))
            await repo.remove(row)
