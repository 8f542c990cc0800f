"""Glance's wire representation of image members and their JSON schemas."""

from __future__ import annotations

from typing import Any

from glimpse.db.tables import ImageMember
from glimpse_api.schemas.images import format_time

_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)


def member_view(member: ImageMember) -> dict[str, Any]:
    return {
        "member_id": member.member,
        "image_id": member.image_id,
        "status": member.status,
        "created_at": format_time(member.created_at),
        "updated_at": format_time(member.updated_at),
        "schema": "/v2/schemas/member",
    }


def members_view(members: list[ImageMember]) -> dict[str, Any]:
    return {"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"}


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "member_id": {
                "type": "string",
                "description": "An identifier for the image member (tenantId)",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": _UUID_PATTERN,
            },
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": ["pending", "accepted", "rejected"],
            },
            "schema": {"readOnly": True, "type": "string"},
        },
        "additionalProperties": False,
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
