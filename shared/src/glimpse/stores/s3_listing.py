"""What housekeeping lists in an s3 store's bucket: pending multipart uploads and objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from glimpse.stores.base import StoredEntry

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


@dataclass(frozen=True, slots=True)
class PendingUpload:
    """A multipart upload started and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: float  # seconds since the epoch


@runtime_checkable
class BucketListing(Protocol):
    """What housekeeping lists and aborts in an s3 store (S3Store): named here so that it
    recognises one without importing the driver, and botocore with it, where no s3 store is
    configured."""

    async def entries(self) -> list[StoredEntry]: ...

    async def pending_uploads(self) -> list[PendingUpload]: ...

    async def abort_upload(self, upload: PendingUpload) -> None: ...


async def list_uploads(client: S3Client, bucket: str) -> list[PendingUpload]:
    uploads: list[PendingUpload] = []
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
    async for page in pages:
        uploads.extend(
            PendingUpload(
                key=upload["Key"],
                upload_id=upload["UploadId"],
                initiated=_epoch(upload["Initiated"]),
            )
            for upload in page.get("Uploads", [])
        )
    return uploads


async def list_objects(
    client: S3Client, bucket: str, location_for: Callable[[str], str]
) -> list[StoredEntry]:
    entries: list[StoredEntry] = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    async for page in pages:
        entries.extend(
            StoredEntry(item["Key"], location_for(item["Key"]), _epoch(item["LastModified"]))
            for item in page.get("Contents", [])
        )
    return entries


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC, as S3 sends it."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
