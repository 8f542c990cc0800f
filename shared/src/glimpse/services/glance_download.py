"""glance-download, API side: its parameters, and the task input keys only the worker reads.

`{"method": {"name": "glance-download", "glance_image_id": ..., "glance_region": ...,
"glance_service_interface": "public"}}` fills a queued image from an image of another
deployment (region) that shares this one's Keystone: the worker finds that region's image
endpoint in the caller's catalog and reads the image there with the caller's token
(glimpse_worker.pipelines.glance_download).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from glimpse.domain.errors import InvalidInput

# Task input the tasks API never shows: the caller's token, Fernet-sealed with [key_manager]
# token_encryption_key (dropped when the task ends), and what the import changed of the
# image's metadata, so that a failure can put it back.
USER_TOKEN: Final = "user_token"  # noqa: S105 -- a key's name, not a secret
METADATA_BEFORE: Final = "glance_download_before"
DEFAULT_INTERFACE: Final = "public"


def glance_download_method(method: dict[str, Any]) -> dict[str, str]:
    """The checked glance-download parameters of an import's `method`, or 400."""
    for required in ("glance_region", "glance_image_id"):
        if required not in method:
            raise InvalidInput(f"'{required}' needs to be set for glance-download import method")
        if not isinstance(method[required], str):
            raise InvalidInput(f"'{required}' must be a string")
    image_id = method["glance_image_id"]
    try:
        uuid.UUID(image_id)
    except ValueError:
        # "image id does not look like a UUID" is what clients (tempest) look for.
        raise InvalidInput(f"Remote image id does not look like a UUID: {image_id}") from None
    interface = method.get("glance_service_interface", DEFAULT_INTERFACE)
    if not isinstance(interface, str):
        raise InvalidInput("'glance_service_interface' must be a string")
    return {
        "glance_image_id": image_id,
        "glance_region": method["glance_region"],
        "glance_service_interface": interface,
    }
