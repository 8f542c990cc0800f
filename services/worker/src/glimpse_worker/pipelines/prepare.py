"""Between staging and the stores: the import plugins, then the data they left as the stores
receive it, hashed and inspected on its way.

Both work on the staged file in place, so a job that is retried prepares the staged data
again; every plugin must leave data it has already processed as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from glimpse.domain.images import ImageData
from glimpse.limits import StorageQuota
from glimpse.services import signatures
from glimpse.stores.metering import Meter
from glimpse_worker.pipelines.inspection import surveyed
from glimpse_worker.pipelines.sources import ImportJob
from glimpse_worker.plugins import run_plugins


@dataclass(slots=True)
class Prepared:
    """What preparation learned or changed about the image; applied when it goes active."""

    disk_format: str | None
    container_format: str | None
    virtual_size: int | None = None
    meter: Meter | None = None  # the prepared data's size and hashes
    properties: dict[str, str | None] = field(default_factory=dict)

    def image_values(self) -> ImageData:
        return {
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "virtual_size": self.virtual_size,
        }


async def prepare(job: ImportJob) -> Prepared:
    """Run the enabled plugins over the staged file."""
    prepared = Prepared(job.image.disk_format, job.image.container_format)
    await run_plugins(job, prepared)
    return prepared


async def prepared_data(job: ImportJob, prepared: Prepared) -> AsyncIterator[bytes]:
    """The prepared data for the stores, inspected and hashed on its way (and its signature
    verified, for a signed image). Its last block is held back until the data passed every
    check and its size is reserved under the owner's quota: a store never completes an
    object of data that failed (its write fails, leaving nothing)."""
    verification = _verification(job)
    held: bytes | None = None
    try:
        async for block in surveyed(job, prepared, verification):
            if held is not None:
                yield held
            held = block
        if verification is not None:
            await signatures.verify(verification, job.image.id)
    except Exception as exc:
        await signatures.refuse_unverified(verification, job.image.id, exc)
        raise
    finally:
        if verification is not None:
            verification.close()
    assert prepared.meter is not None  # noqa: S101 -- set by the pass that just ended
    # What the stores are about to keep, reserved under the owner's quota (already, unless
    # this is a retried job whose earlier reservation lapsed with its worker).
    quota = StorageQuota(job.runtime.settings, job.runtime.database)
    await quota.reserve(job.image.id, job.image.owner, prepared.meter.size)
    if held is not None:
        yield held


def _verification(job: ImportJob) -> signatures.Verification | None:
    """The signed image's check, begun: its certificate read with the importing user's token
    (as Glance's import does with the request's context) while the staged data is hashed;
    None for an unsigned image."""
    settings = job.runtime.settings
    token = signatures.unsealed_token(settings, job.task_input.user_token)
    try:
        return signatures.verification_with_token(settings, token, job.properties)
    except signatures.SignatureFailed as exc:
        raise signatures.for_image(job.image.id, exc) from None
