"""The scrubber's lines about an image carry the id of the API request that deleted it, so one
grep for a request id follows a delete from the API to the data's removal and the key's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from barbican_double import BarbicanDouble, running_barbican
from glimpse.logs import install_record_factory
from glimpse_scrubber.jobs import ScrubberRuntime
from glimpse_scrubber.main import run_pass

OCTET = {"Content-Type": "application/octet-stream"}
REQUEST_ID = "req-0c5e9f1a-4c1d-4d0e-9a51-2b6f3d7e8a90"


@pytest.fixture
def barbican() -> Iterator[BarbicanDouble]:
    with running_barbican() as double:
        yield double


def lines_about(caplog: pytest.LogCaptureFixture, image_id: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if image_id in record.getMessage()]


async def test_scrubbed_data_and_key_lines_carry_the_delete_request_id(
    client_for: Any, make_settings: Any, barbican: BarbicanDouble, caplog: pytest.LogCaptureFixture
) -> None:
    install_record_factory()
    settings = make_settings(
        delayed_delete=True, scrub_time=0, barbican={"barbican_endpoint": barbican.url}
    )
    client = await client_for(settings)
    key_id = barbican.add_secret("key-of-the-image")
    body = {
        "disk_format": "raw",
        "container_format": "bare",
        "cinder_encryption_key_id": key_id,
        "cinder_encryption_key_deletion_policy": "on_image_deletion",
    }
    image_id = (await client.post("/v2/images", json=body)).json()["id"]
    response = await client.put(f"/v2/images/{image_id}/file", content=b"disk", headers=OCTET)
    assert response.status_code == 204
    # The API adopts a caller's well-formed request id; its answer names the one it used.
    response = await client.delete(
        f"/v2/images/{image_id}", headers={"x-openstack-request-id": REQUEST_ID}
    )
    assert response.status_code == 204
    assert response.headers["x-openstack-request-id"] == REQUEST_ID

    caplog.set_level(logging.INFO, logger="glimpse")
    caplog.set_level(logging.INFO, logger="glimpse_scrubber")
    caplog.clear()  # only the scrubber's pass: the upload's and the delete's lines are the API's
    runtime = ScrubberRuntime.build(settings)
    try:
        await run_pass(runtime)
    finally:
        await runtime.aclose()

    lines = lines_about(caplog, image_id)
    messages = [record.getMessage() for record in lines]
    # The data went, and the key could not (noauth: no user token), each logged in the
    # delete's name.
    assert any("scrubbed data at" in message for message in messages), messages
    assert any("encryption key" in message for message in messages), messages
    assert {getattr(record, "request_id", None) for record in lines} == {REQUEST_ID}
    # The pass's own summary belongs to no request: the ids do not leak past the image's work.
    summaries = [r for r in caplog.records if r.getMessage().startswith("scrubbed 1 locations")]
    assert [getattr(record, "request_id", None) for record in summaries] == ["-"]
