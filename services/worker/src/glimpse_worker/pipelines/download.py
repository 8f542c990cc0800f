"""web-download's fetch (and glance-download's): the image's data from a URL, into the staging
store.

The URL was checked when the import was admitted; it is checked again here, with every
redirect, and the connection goes to the address that passed (glimpse.net.transport), so
neither a redirect nor a changed DNS answer can point the worker at a private address.
The body streams through the size limits into the staging store, which writes the staged
object whole or not at all: a failed or repeated fetch leaves no partial file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import httpx

from glimpse.db.tables import Image
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.limits import StorageQuota, capped, check_size_cap
from glimpse.net.deadline import DeadlineExceeded, bounded, within
from glimpse.net.tls_errors import TLSErrorTransport
from glimpse.net.transport import FilteredTransport, FilteredURL
from glimpse.net.urlfilter import URLFilter
from glimpse.stores.metering import Meter
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

READ_CHUNK: Final = 1024 * 1024
MAX_REDIRECTS: Final = 5
# A stalled source must not hold the task forever: no byte for 60 s fails the fetch, and so
# does a source slower than a MiB a minute ([task] web_download_timeout bounds the whole).
TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
PACE_SECONDS: Final = 60.0
# The bytes as the server holds them: a compressed transfer would change size and hashes.
_HEADERS: Final = {"Accept-Encoding": "identity"}


class DownloadFailed(Exception):
    """The source cannot be fetched; the message says why (without credentials)."""


def filtered_client(runtime: WorkerRuntime, *, follow_redirects: bool = True) -> httpx.AsyncClient:
    """A client that reaches only what [import_filtering_opts] lets users fetch."""
    url_filter = URLFilter(runtime.settings.import_filtering_opts)
    return httpx.AsyncClient(
        transport=FilteredTransport(url_filter, TLSErrorTransport(httpx.AsyncHTTPTransport())),
        trust_env=False,  # what the worker reaches is decided by its config alone
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        timeout=TIMEOUT,
        headers=_HEADERS,
    )


def _expected_size(response: httpx.Response) -> int | None:
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


async def download(
    runtime: WorkerRuntime,
    image: Image,
    uri: str,
    progress: Progress,
    *,
    headers: dict[str, str] | None = None,
    size: int | None = None,
    method: str = "web-download",
) -> None:
    """Stream `uri` into the staging store under the image's id, within image_size_cap and
    the owner's quota: the bytes are reserved as they come (the reservation stays with the
    import until the image goes active or the import fails). `size`, when known, is the
    length the data must have; `headers` go with the request (never to a log), and then no
    redirect is followed: a redirect would take them (a token) to wherever it points."""
    cap = runtime.settings.image_size_cap
    quota = StorageQuota(runtime.settings, runtime.database)
    shown = redact_url(uri)  # what a task message or a log line may show of it
    loop = asyncio.get_running_loop()
    started = loop.time()
    total = runtime.settings.task.web_download_timeout
    async with filtered_client(runtime, follow_redirects=headers is None) as client:
        try:
            request = client.build_request("GET", uri, headers=headers)
            sending = client.send(request, stream=True)
            response = await within(total, "the source", sending)
            try:
                if response.status_code != httpx.codes.OK:
                    msg = f"Download of {shown} failed: the server answered {response.status_code}"
                    raise DownloadFailed(msg)
                expected = _expected_size(response)
                if size is not None:
                    if expected is not None and expected != size:
                        msg = f"Download of {shown} brings {expected} bytes, not {size}"
                        raise DownloadFailed(msg)
                    expected = size
                check_size_cap(cap, expected)
                # A length the server announces is reserved at once: one too large for the
                # quota fails before any byte is read.
                granted = (
                    0 if expected is None else await quota.reserve(image.id, image.owner, expected)
                )
                meter = Meter(runtime.settings.hashing_algorithm)
                body = bounded(
                    response.aiter_raw(READ_CHUNK),
                    "the source",
                    each=PACE_SECONDS,
                    total=total,
                    since=started,
                )
                # A connection cut short must not pass for the whole image.
                blocks = capped(progress.count(body), meter, cap, expected_size=expected)
                data = quota.guard(image.id, image.owner, blocks, granted=granted)
                stored = await runtime.stores.work.put(image.id, data)
            finally:
                await response.aclose()
        except FilteredURL as exc:
            raise DownloadFailed(f"Download of {shown} refused: {redact_text(str(exc))}") from None
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            msg = f"Download of {shown} failed: {type(exc).__name__}: {redact_text(str(exc))}"
            raise DownloadFailed(msg) from None
    log.info("%s of image %s: %d bytes staged from %s", method, image.id, stored.size, shown)
