"""Rewriting the staged file: the new data goes to a sibling file, which replaces the staged
file only once complete, and is removed on any failure or cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path


@contextlib.asynccontextmanager
async def replacement(staged: Path, suffix: str) -> AsyncIterator[Path]:
    """A path next to `staged` to write the new data to; it replaces `staged` when the block
    ends without error. Named `<image id>.<suffix>` so the staging cleanup recognises a file
    left by a worker that died."""
    temp = staged.with_name(f"{staged.name}.{suffix}")
    try:
        yield temp
        await asyncio.to_thread(_settle, temp, staged)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_remove, temp))
        raise


def _settle(temp: Path, staged: Path) -> None:
    fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(staged)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
