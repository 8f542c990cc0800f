"""Image membership vocabulary: who an image is shared with and what they answered."""

from __future__ import annotations

import enum
from typing import Any, Final

from glimpse.domain.errors import InvalidInput


class MemberStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# `member_status` on the image list also takes `all` (any answer).
LIST_MEMBER_STATUSES: Final = frozenset({*MemberStatus, "all"})
MAX_MEMBER_LENGTH: Final = 255


def validate_member(body: dict[str, Any]) -> str:
    """The project id of a new member, from POST /members' `{"member": ...}`."""
    if "member" not in body:
        raise InvalidInput("Member to be added not specified")
    member = body["member"]
    if not member:
        raise InvalidInput("Member can't be empty")
    if not isinstance(member, str) or len(member) > MAX_MEMBER_LENGTH:
        raise InvalidInput('Expected a member in the form: {"member": "image_id"}')
    return member


def validate_status(body: dict[str, Any]) -> MemberStatus:
    """The new status from PUT /members/{member}'s `{"status": ...}`."""
    if "status" not in body:
        raise InvalidInput("Status not specified")
    try:
        return MemberStatus(body["status"])
    except (ValueError, TypeError):
        raise InvalidInput(
            'Incorrect request: Status must be "pending", "accepted" or "rejected".'
        ) from None


def validate_list_status(raw: str) -> str:
    if raw not in LIST_MEMBER_STATUSES:
        raise InvalidInput(f"Invalid status: {raw}")
    return raw
