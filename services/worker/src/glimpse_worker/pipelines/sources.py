"""Where an import's data comes from: each method brings it into the store the import works
in (StoreRegistry.work).

After `fetch`, the image's data is at its staged location, a file on this worker, whatever the
method: in the staging directory shared with the API nodes, or, when the staging store is an s3
store, in this worker's tasks directory, where glance-direct downloads the object an API node
staged (the object stays in the bucket until the import ends, so a retry starts from it again).
A fetch must be safe to run again after a worker died part-way: it writes the staged object
whole or not at all (CheckedStore.put's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glimpse.db.tables import Image, Task
from glimpse.domain.imports import ImportRequest, ImportTaskInput
from glimpse.domain.tasks import COPY_IMAGE, GLANCE_DIRECT, GLANCE_DOWNLOAD, WEB_DOWNLOAD
from glimpse.stores.base import ObjectNotFound
from glimpse_worker.pipelines.download import DownloadFailed, download
from glimpse_worker.pipelines.existing import stage_existing
from glimpse_worker.pipelines.glance_download import GlanceDownloadFailed, fetch_from_glance
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime


class SourceUnavailable(Exception):
    """The data to import cannot be had; the message says why."""


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One run of an import task, as its steps see it."""

    runtime: WorkerRuntime
    task: Task
    image: Image
    properties: dict[str, str]  # the image's, as the import found them
    task_input: ImportTaskInput  # the task's, parsed
    staged: str  # the staged location, in the store the import works in
    progress: Progress

    @property
    def staged_path(self) -> Path:
        """The staged file: the store the import works in keeps files on this host, which the
        plugins work on in place."""
        return self.runtime.stores.work.local_path(self.staged)

    @property
    def request(self) -> ImportRequest:
        return self.task_input.request

    @property
    def method(self) -> str:
        return self.request.method.name


async def fetch(job: ImportJob) -> Image:
    """Bring the image's data to its staged location for the job's method; the image as the
    import goes on with it (glance-download gives it the remote image's metadata)."""
    method = job.method
    if method == GLANCE_DIRECT:
        await _bring_staged(job)
        return job.image
    if method == GLANCE_DOWNLOAD:
        try:
            return await fetch_from_glance(job)
        except GlanceDownloadFailed as exc:
            raise SourceUnavailable(str(exc)) from exc
    if method == WEB_DOWNLOAD:
        uri = job.request.method.uri
        if uri is None:
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


async def _bring_staged(job: ImportJob) -> None:
    """The data an API node staged, as a file on this worker: in place when the staging
    store keeps its files here, else downloaded from the (s3) staging store."""
    stores = job.runtime.stores
    missing = SourceUnavailable(f"Image {job.image.id} has no staged data to import")
    if stores.work is stores.staging:
        # A stat, on the loop as the file store opens its files: a hop to a thread cost more
        # than the stat itself (a tenth of a second on a busy host).
        if not job.staged_path.is_file():
            raise missing
        return
    staged = stores.staging.location_for(job.image.id)
    try:
        # Fetched afresh on a retry too: a plugin may have rewritten an earlier copy. Counted,
        # so a long download keeps the task's lease.
        await stores.work.put(job.image.id, job.progress.count(stores.staging.get(staged)))
    except ObjectNotFound:
        raise missing from None
    # "Copied N MiB" counts the copy into the stores, as in Glance, so it starts over.
    job.progress.done = 0


async def discard_staged(runtime: WorkerRuntime, image_id: str) -> None:
    """Remove the image's staged data: the import is over (or gone back to queued)."""
    stores = runtime.stores
    await stores.work.delete_if_present(stores.work.location_for(image_id))
    if stores.staging is not stores.work:
        await stores.staging.delete_if_present(stores.staging.location_for(image_id))
