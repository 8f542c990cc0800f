"""Image members: /v2/images/{id}/members[/{member_id}]."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from glimpse_api.deps import ContextDep, MemberServiceDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.schemas.body import read_json_object
from glimpse_api.schemas.members import member_view, members_view

router = APIRouter(prefix="/v2/images/{image_id}/members")


@router.get("", **operation(ok=(200, ref("Members")), errors=(403,)))
async def list_members(image_id: str, ctx: ContextDep, members: MemberServiceDep) -> JSONResponse:
    return JSONResponse(members_view(await members.list_members(ctx, image_id)))


@router.post(
    "",
    **operation(ok=(200, ref("Member")), errors=(403, 409), body=json_body(ref("NewMember"))),
)
async def add_member(
    image_id: str, request: Request, ctx: ContextDep, members: MemberServiceDep
) -> JSONResponse:
    # Glance answers 200 here, not 201.
    member = await members.add(ctx, image_id, await read_json_object(request))
    return JSONResponse(member_view(member))


@router.get("/{member_id}", **operation(ok=(200, ref("Member"))))
async def show_member(
    image_id: str, member_id: str, ctx: ContextDep, members: MemberServiceDep
) -> JSONResponse:
    return JSONResponse(member_view(await members.get(ctx, image_id, member_id)))


@router.put(
    "/{member_id}",
    **operation(ok=(200, ref("Member")), errors=(403,), body=json_body(ref("MemberStatus"))),
)
async def update_member(
    image_id: str,
    member_id: str,
    request: Request,
    ctx: ContextDep,
    members: MemberServiceDep,
) -> JSONResponse:
    body = await read_json_object(request)
    return JSONResponse(member_view(await members.update(ctx, image_id, member_id, body)))


@router.delete("/{member_id}", status_code=204, **operation(errors=(403,)))
async def delete_member(
    image_id: str, member_id: str, ctx: ContextDep, members: MemberServiceDep
) -> Response:
    await members.remove(ctx, image_id, member_id)
    return Response(status_code=204)
