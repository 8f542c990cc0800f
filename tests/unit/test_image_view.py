"""An image's view reads its loaded columns from the instance dict, the others through the ORM."""

from __future__ import annotations

import datetime as dt

from glimpse.config import Settings
from glimpse.db.repositories.images import ImageRecord
from glimpse.db.tables import Image
from glimpse_api.schemas.images import image_view


def test_columns_not_in_the_instance_dict_are_read_through_the_orm(settings: Settings) -> None:
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    image = Image(
        id="i1", name="n", owner="p1", status="queued", visibility="shared", created_at=created
    )
    assert "status" in image.__dict__
    del image.__dict__["status"]  # as an expired attribute: the ORM's value, not a KeyError
    view = image_view(ImageRecord(image, {"k": "v"}, ["t"], []), settings)
    assert view["status"] is None
    assert (view["id"], view["name"], view["owner"], view["visibility"]) == (
        "i1",
        "n",
        "p1",
        "shared",
    )
    assert view["created_at"] == "2026-01-02T03:04:05Z"
    assert (view["k"], view["tags"], view["self"]) == ("v", ["t"], "/v2/images/i1")
