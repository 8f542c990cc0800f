"""The s3 store's multipart upload: a stream cut into parts, each sent while the next fills.

A new part is filled only while fewer than MAX_PARTS_IN_FLIGHT parts are held, so one upload
holds at most two parts of memory: one being sent while the next fills (or two being sent).
The store aborts the upload on any error or cancellation (`abort`), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterable, Awaitable
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from glimpse.stores.base import ObjectNotFound, StoreError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = logging.getLogger(__name__)

MiB: Final = 1024 * 1024
MAX_PARTS: Final = 10_000  # S3's limit per multipart upload
MAX_PARTS_IN_FLIGHT: Final = 2

T = TypeVar("T")


class Requester(Protocol):
    """S3Store.request: one S3 call within the request timeout, errors as StoreError."""

    async def __call__(self, what: str, call: Awaitable[T], *, missing: frozenset[str]) -> T: ...


class MultipartUpload:
    """One multipart upload: parts go out while the next one fills, within MAX_PARTS_IN_FLIGHT.
    `request` is the store's: it bounds each call by the request timeout and turns botocore's
    errors into StoreError."""

    def __init__(
        self,
        store_name: str,
        request: Requester,
        client: S3Client,
        *,
        bucket: str,
        key: str,
        upload_id: str,
    ) -> None:
        self.store_name = store_name
        self.request = request
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self.etags: dict[int, str] = {}
        self.sending: set[asyncio.Task[None]] = set()

    async def send_all(
        self, first: Part, reader: PartReader, *, part_size: int, parts_in_flight: int
    ) -> int:
        """Send `first` and the rest of `reader` in parts of `part_size`, then complete the
        upload; return the object's size."""
        in_flight = max(1, min(parts_in_flight, MAX_PARTS_IN_FLIGHT))
        size = 0
        number = 0
        part = first
        while part.size:
            number += 1
            if number > MAX_PARTS:
                raise StoreError(
                    f"store {self.store_name}: object exceeds {MAX_PARTS} parts of "
                    f"{part_size // MiB} MiB; raise s3_store_large_object_chunk_size"
                )
            size += part.size
            self.sending.add(asyncio.create_task(self._send(number, part.take())))
            while len(self.sending) >= in_flight:
                done, self.sending = await asyncio.wait(
                    self.sending, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
            part = await reader.read(part_size)
        if self.sending:
            await asyncio.gather(*self.sending)
            self.sending.clear()
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self.etags.items())]
        await self.request(
            f"complete multipart upload {self.bucket}/{self.key}",
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            ),
            missing=frozenset(),
        )
        return size

    async def _send(self, number: int, body: io.BytesIO) -> None:
        response = await self.request(
            f"upload part {number} of {self.bucket}/{self.key}",
            self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            ),
            missing=frozenset(),
        )
        self.etags[number] = response["ETag"]

    async def abort(self) -> None:
        for task in self.sending:
            task.cancel()
        await asyncio.gather(*self.sending, return_exceptions=True)
        try:
            await self.request(
                f"abort multipart upload {self.bucket}/{self.key}",
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                ),
                missing=frozenset({"NoSuchUpload"}),
            )
        except ObjectNotFound:
            pass  # already gone
        except StoreError as exc:
            # The upload's parts stay billed until removed: say which upload to remove.
            log.warning("%s; upload id %s is left pending", exc, self.upload_id)


class Part:
    """One part's bytes in a BytesIO: botocore sends a file-like body as it is, and aiohttp
    reads it in small slices, so no copy of the part is ever made (bytes or a bytearray would
    be copied once more on the way out)."""

    def __init__(self) -> None:
        self.body = io.BytesIO()
        self.size = 0

    def add(self, data: memoryview) -> None:
        self.body.write(data)
        self.size += len(data)

    def take(self) -> io.BytesIO:
        """The body, rewound; the part lets go of it so its memory goes once it is sent."""
        body, self.body = self.body, io.BytesIO()
        body.seek(0)
        return body


class PartReader:
    """Cuts a stream of chunks into parts of a fixed size."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self._pending = memoryview(b"")
        self._exhausted = False

    async def _next(self) -> bool:
        while not self._pending and not self._exhausted:
            try:
                self._pending = memoryview(await anext(self._chunks))
            except StopAsyncIteration:
                self._exhausted = True
        return bool(self._pending)

    async def at_end(self) -> bool:
        return not await self._next()

    async def read(self, size: int) -> Part:
        """Up to `size` bytes; fewer only at the end of the stream, none after it."""
        part = Part()
        while part.size < size and await self._next():
            take = min(size - part.size, len(self._pending))
            part.add(self._pending[:take])
            self._pending = self._pending[take:]
        return part
