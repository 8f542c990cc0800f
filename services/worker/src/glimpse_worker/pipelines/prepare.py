"""Between staging and the stores: the import plugins, then one pass that hashes and
inspects what they left (run while the stores are written, which hold back their last block
until it passed).

Both work on the staged file in place, so a job that is retried prepares the staged data
again; every plugin must leave data it has already processed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glimpse.domain.images import ImageData
from glimpse.limits import StorageQuota
from glimpse.services import signatures
from glimpse.stores.metering import Meter
from glimpse_worker.pipelines.inspection import survey_staged
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


async def survey(job: ImportJob, prepared: Prepared) -> None:
    """Inspect and hash what the plugins left into `prepared` (and verify its signature, for
    a signed image), then reserve its size under the owner's quota: raises if the data may
    not be kept, before any store completes an object of it."""
    verification = _verification(job)
    try:
        prepared.meter = await survey_staged(job, prepared, verification)
        if verification is not None:
            await signatures.verify(verification, job.image.id)
    except BaseException as exc:
        await signatures.refuse_unverified(verification, job.image.id, exc)
        raise
    finally:
        if verification is not None:
            verification.close()
    # What the stores are about to receive, reserved under the owner's quota (already, unless
    # this is a retried job whose earlier reservation lapsed with its worker).
    quota = StorageQuota(job.runtime.settings, job.runtime.database)
    await quota.reserve(job.image.id, job.image.owner, prepared.meter.size)


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
