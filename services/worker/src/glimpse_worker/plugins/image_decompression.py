"""`image_decompression`: a gzip stream, or a zip archive of exactly one file, is replaced by
its content. Detected by magic bytes, not by name or disk_format; an image whose
container_format is `compressed` is meant to stay compressed and is left alone.

The output stops at image_size_cap bytes, so a decompression bomb cannot fill the staging disk;
it is reserved under the owner's user_storage_quota before it is written (see
glimpse.services.quota), so output past the quota fails the import too. Data that is already
decompressed has no magic bytes, so a retried job leaves it as it is.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, cast

from glimpse.services.quota import StorageQuota
from glimpse_worker.pipelines.sources import staged_path
from glimpse_worker.plugins import PluginFailed
from glimpse_worker.plugins.staging import replacement

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared
    from glimpse_worker.pipelines.sources import ImportJob

log = logging.getLogger(__name__)

GZIP_MAGIC: Final = b"\x1f\x8b\x08"
ZIP_MAGIC: Final = b"PK\x03\x04"
CHUNK: Final = 1024 * 1024


async def image_decompression(job: ImportJob, prepared: Prepared) -> None:
    if prepared.container_format == "compressed":
        log.info("import task %s: container_format compressed, not decompressing", job.task.id)
        return
    staged = staged_path(job.staged)
    head = await asyncio.to_thread(_head, staged)
    if head.startswith(GZIP_MAGIC):
        kind = "gzip"
    elif head.startswith(ZIP_MAGIC):
        kind = "zip"
    else:
        return
    cap = job.runtime.settings.image_size_cap
    try:
        source = await asyncio.to_thread(_open, kind, staged)
    except (OSError, RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
        raise PluginFailed(f"Image decompression failed: {exc}") from None
    try:
        async with replacement(staged, "uc") as temp:
            size = await _copy(job, source, temp, cap)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise PluginFailed(f"Image decompression failed: {exc}") from None
    finally:
        await asyncio.shield(asyncio.to_thread(source.close))
    log.info("import task %s: %s data decompressed to %d bytes", job.task.id, kind, size)


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(len(ZIP_MAGIC))


def _open(kind: str, path: Path) -> IO[bytes]:
    if kind == "gzip":
        return cast("IO[bytes]", gzip.open(path, "rb"))
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) != 1 or members[0].is_dir():
            msg = "Image decompression failed: the zip archive must hold exactly one file"
            raise PluginFailed(msg)
        # The member keeps the archive's file open after the archive object is closed.
        return archive.open(members[0])


async def _copy(job: ImportJob, source: IO[bytes], target: Path, cap: int) -> int:
    """Decompress in bounded chunks into `target`; stop past `cap` output bytes, or past
    what the owner's quota leaves (the output is reserved before it is written)."""
    quota = StorageQuota(job.runtime.settings, job.runtime.database)
    size = 0
    out = await asyncio.to_thread(target.open, "wb")
    try:
        async for chunk in quota.guard(job.image.id, job.image.owner, _read(source, cap)):
            size += len(chunk)
            await asyncio.to_thread(out.write, chunk)
            await job.progress.beat()  # keeps the lease of a long decompression
    finally:
        await asyncio.shield(asyncio.to_thread(out.close))
    return size


async def _read(source: IO[bytes], cap: int) -> AsyncIterator[bytes]:
    """The decompressed data in chunks, refused once past `cap` bytes."""
    size = 0
    while chunk := await asyncio.to_thread(source.read, CHUNK):
        size += len(chunk)
        if size > cap:
            msg = (
                "Image decompression failed: the decompressed image is larger than "
                f"image_size_cap ({cap} bytes)"
            )
            raise PluginFailed(msg)
        yield chunk
