"""The `s3` store: image data as objects in one bucket of an S3 or S3-compatible server.

Locations are `s3://<host>/<bucket>/<key>` (`s3+https://` for an https endpoint), the form
current glance_store writes. Older glance_store releases put the access and secret keys into the
location (`s3://<access>:<secret>@<host>/<bucket>/<key>`), so they ended up in the database and
in `direct_url`. This driver never writes credentials into a location: it signs every request
with the keys configured for the store, ignores credentials an imported location still carries,
and serves only locations on its own endpoint, so a signed request never goes to another host.

Uploads arrive without a size. The driver reads up to one part: a stream that ends there (and
within `s3_store_large_object_size`) is stored with one PutObject; a longer one becomes a
multipart upload of `s3_store_large_object_chunk_size` parts (s3_multipart), which holds at
most two parts of memory at a time. Any error or cancellation
aborts the multipart upload, so neither an object nor a pending upload is left behind. Only a
process killed mid-upload leaves one pending: `pending_uploads` and `abort_upload` let
housekeeping find and remove it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from glimpse.config import ConfigError, Settings
from glimpse.domain.redaction import redact_url
from glimpse.net.deadline import DeadlineExceeded, bounded, within
from glimpse.stores.base import (
    Capability,
    ObjectNotFound,
    ResolvedRange,
    StoredEntry,
    StoredObject,
    StoreError,
)
from glimpse.stores.s3_listing import PendingUpload, list_objects, list_uploads
from glimpse.stores.s3_multipart import (
    MAX_PARTS_IN_FLIGHT,
    MultipartUpload,
    Part,
    PartReader,
)

if TYPE_CHECKING:
    from aiobotocore.session import ClientCreatorContext
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.literals import BucketLocationConstraintType
    from types_aiobotocore_s3.type_defs import CreateMultipartUploadOutputTypeDef

log = logging.getLogger(__name__)

MiB: Final = 1024 * 1024
READ_CHUNK: Final = MiB
# An object whose bucket is gone is as missing as one whose key is.
_NOT_FOUND: Final = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_NO_BUCKET: Final = frozenset({"NoSuchBucket", "NotFound", "404"})
_AWS_REGION_HOST: Final = re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class S3Config:
    """One store's settings, sizes in bytes. Keys stay out of repr so they never reach logs."""

    endpoint_url: str
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region_name: str = "us-east-1"
    create_bucket: bool = False
    addressing_style: str = "auto"
    large_object_size: int = 100 * MiB
    part_size: int = 10 * MiB
    parts_in_flight: int = MAX_PARTS_IN_FLIGHT
    cacert: str = ""
    request_timeout: float = 300.0  # one request in all; a GET's body: each chunk


class S3Store:
    capabilities = Capability.READ | Capability.WRITE | Capability.DELETE | Capability.RANGE_READ

    def __init__(self, name: str, config: S3Config) -> None:
        self.name = name
        self.config = config
        endpoint = urlsplit(config.endpoint_url)
        self.scheme = "s3+https" if endpoint.scheme == "https" else "s3"
        self.host = endpoint.netloc.rpartition("@")[2] + endpoint.path.rstrip("/")
        self._client: S3Client | None = None
        self._exit = contextlib.AsyncExitStack()
        self._client_lock = asyncio.Lock()
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()
        self._cleanups: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"S3Store({self.name!r}, {self.config!r})"

    # -- locations --------------------------------------------------------------------------

    def location_for(self, key: str) -> str:
        return f"{self.scheme}://{self.host}/{self.config.bucket}/{key}"

    def _check_key(self, key: str) -> None:
        if not key or "/" in key or key.startswith("."):
            raise StoreError(f"invalid object key {key!r}")

    def _parse(self, location: str) -> tuple[str, str]:
        """(bucket, key) of a location on this store's endpoint; StoreError otherwise."""
        parts = urlsplit(location)
        if parts.scheme not in ("s3", "s3+http", "s3+https"):
            raise StoreError(f"not an s3 location: {_redact(location)!r}")
        host = parts.netloc.rpartition("@")[2]  # drop legacy embedded credentials
        # glance_store's layout: everything before the last two path segments is the endpoint.
        *prefix, bucket, key = ["", *parts.path.split("/")] if parts.path else ["", "", ""]
        service = "/".join(p for p in [host, *prefix] if p)
        if not bucket or not key or service != self.host:
            raise StoreError(
                f"location {_redact(location)!r} is not on store {self.name}'s endpoint"
            )
        return bucket, key

    # -- the client -------------------------------------------------------------------------

    async def _s3(self) -> S3Client:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._exit.enter_async_context(self._create_client())
        return self._client

    def _create_client(self) -> ClientCreatorContext[S3Client]:
        config = AioConfig(
            s3={"addressing_style": self.config.addressing_style},
            # Only the checksums S3 requires, as glance_store does by default: many
            # S3-compatible servers reject the newer default ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=10,
            read_timeout=120,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        return get_session().create_client(
            "s3",
            endpoint_url=self.config.endpoint_url,
            region_name=self.config.region_name,
            aws_access_key_id=self.config.access_key,
            aws_secret_access_key=self.config.secret_key,
            verify=self.config.cacert or None,
            config=config,
        )

    async def request(self, what: str, call: Awaitable[T], *, missing: frozenset[str]) -> T:
        """Await one S3 call within s3_store_request_timeout, turning its errors into
        ObjectNotFound (codes in `missing`), _TimedOut, or StoreError with the operation and
        S3's message."""
        try:
            return await within(self.config.request_timeout, what, call)
        except DeadlineExceeded as exc:
            raise _TimedOut(f"store {self.name}: {exc}") from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._error(what, exc, missing) from exc

    def _error(
        self, what: str, exc: ClientError | BotoCoreError, missing: frozenset[str]
    ) -> StoreError:
        if not isinstance(exc, ClientError):
            return StoreError(f"store {self.name}: {what} failed: {exc}")
        code = _code(exc)
        if code in missing:
            return ObjectNotFound(what)
        message = exc.response.get("Error", {}).get("Message") or code
        return StoreError(f"store {self.name}: {what} failed: {code}: {message}")

    async def _ensure_bucket(self, client: S3Client) -> None:
        if self._bucket_ready:
            return
        bucket = self.config.bucket
        async with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                await self.request(
                    f"HEAD bucket {bucket}", client.head_bucket(Bucket=bucket), missing=_NO_BUCKET
                )
            except ObjectNotFound:
                if not self.config.create_bucket:
                    raise StoreError(
                        f"store {self.name}: bucket {bucket} does not exist "
                        "(set s3_store_create_bucket_on_put to create it)"
                    ) from None
                await self._create_bucket(client)
            self._bucket_ready = True

    async def _create_bucket(self, client: S3Client) -> None:
        bucket = self.config.bucket
        region = self.config.region_name
        what = f"create bucket {bucket}"
        try:
            if region == "us-east-1":  # the one region that takes no location constraint
                creating = client.create_bucket(Bucket=bucket)
            else:
                creating = client.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={
                        "LocationConstraint": cast("BucketLocationConstraintType", region)
                    },
                )
            await within(self.config.request_timeout, what, creating)
        except DeadlineExceeded as exc:
            raise _TimedOut(f"store {self.name}: {exc}") from exc
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":  # another upload just created it
                raise self._error(what, exc, frozenset()) from exc
        except BotoCoreError as exc:
            raise self._error(what, exc, frozenset()) from exc

    # -- the driver contract ----------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        self._check_key(key)
        client = await self._s3()
        await self._ensure_bucket(client)
        config = self.config
        reader = PartReader(chunks)
        first = await reader.read(config.part_size)
        if await reader.at_end() and first.size <= config.large_object_size:
            try:
                await self.request(
                    f"PUT {config.bucket}/{key}",
                    client.put_object(Bucket=config.bucket, Key=key, Body=first.take()),
                    missing=frozenset(),
                )
            except (asyncio.CancelledError, _TimedOut):
                # The server may have stored the object before the cancellation (or the
                # deadline) arrived.
                await self._shielded(self._remove_quietly(client, key))
                raise
            return StoredObject(location=self.location_for(key), size=first.size)
        return await self._put_multipart(client, key, first, reader)

    async def _put_multipart(
        self, client: S3Client, key: str, first: Part, reader: PartReader
    ) -> StoredObject:
        bucket = self.config.bucket
        creating = asyncio.ensure_future(
            self.request(
                f"start multipart upload {bucket}/{key}",
                client.create_multipart_upload(Bucket=bucket, Key=key),
                missing=frozenset(),
            )
        )
        try:
            created = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # The server may have created the upload already: abort it once its id is known.
            await self._shielded(self._abort_once_created(client, key, creating))
            raise
        upload = self._multipart(client, key, created["UploadId"])
        try:
            size = await upload.send_all(
                first,
                reader,
                part_size=self.config.part_size,
                parts_in_flight=self.config.parts_in_flight,
            )
        except BaseException:
            await self._shielded(upload.abort())
            raise
        return StoredObject(location=self.location_for(key), size=size)

    async def _abort_once_created(
        self,
        client: S3Client,
        key: str,
        creating: asyncio.Future[CreateMultipartUploadOutputTypeDef],
    ) -> None:
        try:
            created = await creating
        except StoreError:
            return  # no upload was created
        await self._multipart(client, key, created["UploadId"]).abort()

    def _multipart(self, client: S3Client, key: str, upload_id: str) -> MultipartUpload:
        return MultipartUpload(
            self.name, self.request, client, bucket=self.config.bucket, key=key, upload_id=upload_id
        )

    async def _remove_quietly(self, client: S3Client, key: str) -> None:
        deleting = client.delete_object(Bucket=self.config.bucket, Key=key)
        try:
            await within(self.config.request_timeout, f"DELETE {key}", deleting)
        except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
            log.warning("store %s: could not remove %s: %s", self.name, key, exc)

    async def _shielded(self, cleanup: Coroutine[Any, Any, None]) -> None:
        """Run a cleanup to its end even if the caller is cancelled again meanwhile."""
        task = asyncio.ensure_future(cleanup)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        await asyncio.shield(task)

    async def get(
        self, location: str, byte_range: ResolvedRange | None = None
    ) -> AsyncIterator[bytes]:
        bucket, key = self._parse(location)
        if byte_range is not None and byte_range.stop <= byte_range.start:
            return
        client = await self._s3()
        what = f"GET {bucket}/{key}"
        if byte_range is None:
            request = client.get_object(Bucket=bucket, Key=key)
        else:
            span = f"bytes={byte_range.start}-{byte_range.stop - 1}"
            request = client.get_object(Bucket=bucket, Key=key, Range=span)
        response = await self.request(what, request, missing=_NOT_FOUND)
        body = response["Body"]
        try:
            # Each chunk within the request timeout: a server sending a byte at a time
            # cannot hold the read forever.
            chunks = bounded(_body_chunks(body), what, each=self.config.request_timeout)
            try:
                async for chunk in chunks:
                    yield chunk
            except (BotoCoreError, OSError, DeadlineExceeded) as exc:
                raise StoreError(f"store {self.name}: {what} failed: {exc}") from exc
        finally:
            body.close()

    async def delete(self, location: str) -> None:
        bucket, key = self._parse(location)
        client = await self._s3()
        # S3 answers a DELETE of a missing key with success; the contract says ObjectNotFound.
        await self.request(
            f"HEAD {bucket}/{key}", client.head_object(Bucket=bucket, Key=key), missing=_NOT_FOUND
        )
        await self.request(
            f"DELETE {bucket}/{key}",
            client.delete_object(Bucket=bucket, Key=key),
            missing=_NOT_FOUND,
        )

    async def size(self, location: str) -> int:
        bucket, key = self._parse(location)
        client = await self._s3()
        head = await self.request(
            f"HEAD {bucket}/{key}", client.head_object(Bucket=bucket, Key=key), missing=_NOT_FOUND
        )
        return head["ContentLength"]

    # -- housekeeping ---------------------------------------------------------------------------

    async def pending_uploads(self) -> list[PendingUpload]:
        """Every multipart upload pending in the bucket, whoever started it."""
        bucket = self.config.bucket
        client = await self._s3()
        return await self._listing(
            f"list multipart uploads of {bucket}", list_uploads(client, bucket)
        )

    async def entries(self) -> list[StoredEntry]:
        """Every object in the bucket, for housekeeping (the staging store's own bucket:
        listing one that holds images would be long)."""
        bucket = self.config.bucket
        client = await self._s3()
        return await self._listing(
            f"list objects of {bucket}", list_objects(client, bucket, self.location_for)
        )

    async def _listing(self, what: str, listing: Awaitable[list[T]]) -> list[T]:
        try:
            return await within(self.config.request_timeout, what, listing)
        except DeadlineExceeded as exc:
            raise _TimedOut(f"store {self.name}: {exc}") from exc
        except (ClientError, BotoCoreError) as exc:
            error = self._error(what, exc, _NO_BUCKET)
            if isinstance(error, ObjectNotFound):
                return []  # no bucket yet: nothing was ever uploaded
            raise error from exc

    async def abort_upload(self, upload: PendingUpload) -> None:
        """Abort a pending multipart upload, freeing its parts; one already gone is done."""
        bucket = self.config.bucket
        client = await self._s3()
        with contextlib.suppress(ObjectNotFound):  # completed or aborted meanwhile
            await self.request(
                f"abort multipart upload {bucket}/{upload.key}",
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload.key, UploadId=upload.upload_id
                ),
                missing=frozenset({"NoSuchUpload"}),
            )

    async def aclose(self) -> None:
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self._exit.aclose()
        self._client = None


class _TimedOut(StoreError):
    """An S3 request ran past s3_store_request_timeout."""


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:  # noqa: ANN401 -- aiobotocore's stream
    """The body in READ_CHUNK blocks (the last may be shorter). A read returns what has
    arrived, however little: gathering whole blocks is what lets a deadline per block bound
    the pace of a server that sends a few bytes at a time."""
    block = bytearray()
    while chunk := await body.read(READ_CHUNK - len(block)):
        block += chunk
        if len(block) >= READ_CHUNK:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _redact(location: str) -> str:
    """A location without the credentials an old glance_store location may embed."""
    return redact_url(location)


def _region_for(host: str) -> str:
    """glance_store's rule: the region is in an AWS endpoint's name; anything else signs for
    us-east-1, which S3-compatible servers accept."""
    name = urlsplit(host).hostname or ""
    match = _AWS_REGION_HOST.match(name)
    return match.group(1) if match else "us-east-1"


def from_settings(store_id: str, settings: Settings) -> S3Store:
    options = settings.store_options(store_id)
    endpoint, bucket = options.s3_endpoint(), options.s3_store_bucket
    access, secret = options.s3_store_access_key, options.s3_store_secret_key
    missing = options.missing_s3_options()
    if missing or not endpoint or not bucket or access is None or secret is None:
        raise ConfigError(f"[{store_id}] an s3 store needs {', '.join(missing)}")
    config = S3Config(
        endpoint_url=endpoint,
        bucket=bucket,
        access_key=access.get_secret_value(),
        secret_key=secret.get_secret_value(),
        region_name=options.s3_store_region_name or _region_for(endpoint),
        create_bucket=options.s3_store_create_bucket_on_put,
        addressing_style=options.s3_store_bucket_url_format,
        large_object_size=options.s3_store_large_object_size * MiB,
        part_size=options.s3_store_large_object_chunk_size * MiB,
        parts_in_flight=options.s3_store_thread_pools,
        cacert=options.s3_store_cacert,
        request_timeout=float(options.s3_store_request_timeout),
    )
    return S3Store(store_id, config)
