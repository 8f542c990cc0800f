"""web-download's fetch: the image's data from the URL the user gave, into the staging store.

The URL was checked when the import was admitted; it is checked again here, with every
redirect, and the connection goes to the address that passed (glimpse.net.transport), so
neither a redirect nor a changed DNS answer can point the worker at a private address.
The body streams through the size limits into the staging store, which writes the staged
object whole or not at all: a failed or repeated fetch leaves no partial file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx

from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image
from glimpse.domain.errors import LimitExceeded
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.net.transport import FilteredTransport, FilteredURL
from glimpse.net.urlfilter import URLFilter
from glimpse.services.image_data import size_limit
from glimpse.stores.metering import Meter, metered
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerContext

log = logging.getLogger(__name__)

READ_CHUNK: Final = 1024 * 1024
MAX_REDIRECTS: Final = 5
# A stalled source must not hold the task forever: no byte for READ_TIMEOUT fails the fetch.
TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
# The bytes as the server holds them: a compressed transfer would change size and hashes.
_HEADERS: Final = {"Accept-Encoding": "identity"}


class DownloadFailed(Exception):
    """The source cannot be fetched; the message says why (without credentials)."""


def _client(ctx: WorkerContext) -> httpx.AsyncClient:
    url_filter = URLFilter(ctx.settings.import_filtering_opts)
    return httpx.AsyncClient(
        transport=FilteredTransport(url_filter, httpx.AsyncHTTPTransport()),
        trust_env=False,  # what the worker reaches is decided by its config alone
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=TIMEOUT,
        headers=_HEADERS,
    )


async def _limit(ctx: WorkerContext, image: Image) -> tuple[int, Callable[[], LimitExceeded]]:
    """image_size_cap, or what is left of the owner's storage quota when that is smaller."""
    quota = ctx.settings.user_storage_quota
    quota_left = None
    if quota > 0 and image.owner is not None:
        async with ctx.database.read() as session:
            quota_left = quota - await ImageRepository(session).storage_used(image.owner)
    return size_limit(ctx.settings, quota_left)


def _expected_size(response: httpx.Response) -> int | None:
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


async def download(ctx: WorkerContext, image: Image, uri: str, progress: Progress) -> None:
    """Stream `uri` into the staging store under the image's id."""
    limit, too_big = await _limit(ctx, image)
    shown = redact_url(uri)  # what a task message or a log line may show of it
    async with _client(ctx) as client:
        try:
            async with client.stream("GET", uri) as response:
                if response.status_code != httpx.codes.OK:
                    msg = f"Download of {shown} failed: the server answered {response.status_code}"
                    raise DownloadFailed(msg)
                meter = Meter(ctx.settings.hashing_algorithm)
                body: AsyncIterator[bytes] = response.aiter_raw(READ_CHUNK)
                data = metered(
                    progress.count(body),
                    meter,
                    limit=limit,
                    on_limit=too_big,
                    # A connection cut short must not pass for the whole image.
                    expected_size=_expected_size(response),
                )
                stored = await ctx.stores.staging.put(image.id, data)
        except FilteredURL as exc:
            raise DownloadFailed(f"Download of {shown} refused: {redact_text(str(exc))}") from None
        except httpx.HTTPError as exc:
            msg = f"Download of {shown} failed: {type(exc).__name__}: {redact_text(str(exc))}"
            raise DownloadFailed(msg) from None
    log.info("web-download of image %s: %d bytes staged from %s", image.id, stored.size, shown)
