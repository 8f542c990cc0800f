"""glance-download, API side: its parameters, and the task input keys only the worker reads.

`{"method": {"name": "glance-download", "glance_image_id": ..., "glance_region": ...,
"glance_service_interface": "public"}}` fills a queued image from an image of another
deployment (region) that shares this one's Keystone: the worker finds that region's image
endpoint in the caller's catalog and reads the image there with the caller's token
(glimpse_worker.pipelines.glance_download). The request's parameters are parsed into the
import contract (glimpse.domain.imports.GlanceSource).
"""

from __future__ import annotations

from typing import Any

from glimpse.domain.imports import DEFAULT_INTERFACE, METADATA_BEFORE, USER_TOKEN, GlanceSource

__all__ = ["DEFAULT_INTERFACE", "METADATA_BEFORE", "USER_TOKEN", "glance_download_method"]


def glance_download_method(method: dict[str, Any]) -> dict[str, str]:
    """The checked glance-download parameters of an import's `method`, or 400."""
    return GlanceSource.from_method(method).to_json()
