"""`[glance_download_properties]`: what the glance-download import method copies of the
remote image besides its data, disk_format and container_format."""

from __future__ import annotations

from pydantic import BaseModel, Field

from glimpse.config.notation import GlanceList


class GlanceDownloadOptions(BaseModel):
    extra_properties: GlanceList[str] = Field(
        default_factory=lambda: ["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"],
        description=(
            "Prefixes of the remote image's properties that glance-download sets on the "
            "imported image (a property whose name starts with one); the others are not "
            "copied. Reserved os_glance_* properties are never copied."
        ),
    )
