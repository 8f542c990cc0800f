"""Where an import's data comes from: each method brings it into the staging store.

After `fetch`, the image's data is at its staged location (a file in the shared staging
directory), whatever the method. A fetch must be safe to run again after a worker died
part-way: it writes the staged object whole or not at all (CheckedStore.put's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from glimpse.db.tables import Image, Task
from glimpse.domain.tasks import COPY_IMAGE, GLANCE_DIRECT, GLANCE_DOWNLOAD, WEB_DOWNLOAD
from glimpse_worker.pipelines.download import DownloadFailed, download
from glimpse_worker.pipelines.existing import stage_existing
from glimpse_worker.pipelines.glance_download import GlanceDownloadFailed, fetch_from_glance
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime


class SourceUnavailable(Exception):
    """The data to import cannot be had; the message says why."""


def staged_path(staged: str) -> Path:
    """The local path of a staged location (the staging store is a file store)."""
    return Path(urlsplit(staged).path)


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One run of an import task, as its steps see it."""

    runtime: WorkerRuntime
    task: Task
    image: Image
    properties: dict[str, str]  # the image's, as the import found them
    request: dict[str, Any]  # the task's import_req
    staged: str  # the staged location
    progress: Progress

    @property
    def method(self) -> str | None:
        method = self.request.get("method")
        return method.get("name") if isinstance(method, dict) else None


async def fetch(job: ImportJob) -> Image:
    """Bring the image's data to its staged location for the job's method; the image as the
    import goes on with it (glance-download gives it the remote image's metadata)."""
    method = job.method
    if method == GLANCE_DIRECT:
        if not await anyio.Path(staged_path(job.staged)).is_file():
            raise SourceUnavailable(f"Image {job.image.id} has no staged data to import")
        return job.image
    if method == GLANCE_DOWNLOAD:
        try:
            return await fetch_from_glance(job)
        except GlanceDownloadFailed as exc:
            raise SourceUnavailable(str(exc)) from exc
    if method == WEB_DOWNLOAD:
        uri = job.request["method"].get("uri")
        if not isinstance(uri, str):
            raise SourceUnavailable(f"Import task {job.task.id} names no URI to download")
        try:
            await download(job.runtime, job.image, uri, job.progress)
        except DownloadFailed as exc:
            raise SourceUnavailable(str(exc)) from exc
        # "Copied N MiB" counts the copy into the stores, as in Glance, so it starts over.
        job.progress.done = 0
        return job.image
    if method == COPY_IMAGE:
        await stage_existing(job.runtime, job.image, job.progress)
        return job.image
    raise SourceUnavailable(f"Import method {method} is not available on this worker")
