"""One node's cache directory: `<image_id>` files hold verified data, `incomplete/` holds
fills in progress (never served by name), `invalid/` is Glance's and only ever emptied."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from glimpse.stores.filesystem import READ_CHUNK, read_at

INCOMPLETE: Final = "incomplete"
INVALID: Final = "invalid"
_IMAGE_FILE = re.compile(r"^[0-9a-fA-F-]{36}$")  # what an image id looks like; nothing else is ours


@dataclass(frozen=True, slots=True)
class Removed:
    files: int
    size: int


class CacheDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incomplete = root / INCOMPLETE
        self.invalid = root / INVALID

    def prepare(self) -> None:
        for path in (self.root, self.incomplete, self.invalid):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, image_id: str) -> Path:
        if not _IMAGE_FILE.match(image_id):
            msg = f"not an image id: {image_id!r}"
            raise ValueError(msg)
        return self.root / image_id

    def partial(self, image_id: str) -> Path:
        """A new, unique name for a fill of `image_id` (several processes may fill at once)."""
        return self.incomplete / f"{self.path(image_id).name}.{uuid.uuid4().hex}"

    @contextlib.contextmanager
    def claim(self, image_id: str) -> Iterator[bool]:
        """Whether this process may fetch the image now: False while another process of this
        node (sharing the directory) holds the claim. The lock file goes with stalled fills."""
        lock = self.incomplete / f"{self.path(image_id).name}.prefetch"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.utime(fd)  # a claim in use is not stalled
            yield True
        finally:
            os.close(fd)  # releases the lock

    def size_of(self, image_id: str) -> int | None:
        try:
            return self.path(image_id).stat().st_size
        except FileNotFoundError:
            return None

    def remove(self, image_id: str) -> int:
        """Remove the image's file; the bytes freed (0 if it was not there). Readers that have
        it open finish their download."""
        path = self.path(image_id)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def cached_ids(self) -> list[str]:
        with os.scandir(self.root) as entries:
            return [e.name for e in entries if e.is_file() and _IMAGE_FILE.match(e.name)]

    def remove_stalled(self, older_than: float, keep: set[Path]) -> Removed:
        """Unfinished fills not written to for `older_than` seconds (not those in `keep`, this
        process's live fills), and every invalid file."""
        deadline = time.time() - older_than
        files = size = 0
        for directory, limit in ((self.incomplete, deadline), (self.invalid, float("inf"))):
            with os.scandir(directory) as entries:
                for entry in entries:
                    path = Path(entry.path)
                    if not entry.is_file() or path in keep:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        stat = entry.stat()
                        if stat.st_mtime <= limit:
                            path.unlink()
                            files += 1
                            size += stat.st_size
        return Removed(files, size)


async def read_file(fd: int, start: int, stop: int) -> AsyncIterator[bytes]:
    """Stream bytes [start, stop) of an open file, then close it."""
    try:
        offset = start
        while offset < stop:
            chunk = await read_at(fd, offset, min(READ_CHUNK, stop - offset))
            if not chunk:
                msg = "cache file shorter than recorded"
                raise OSError(msg)
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def open_for_read(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
