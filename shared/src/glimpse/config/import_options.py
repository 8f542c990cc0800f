"""Options of imports and of the data they fetch and check: `[import_filtering_opts]`,
`[image_format]`, `[task]`, `[image_import_opts]`, `[image_conversion]` and
`[inject_metadata_properties]`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from glimpse.config.notation import GlanceDict, GlanceList
from glimpse.domain.images import MAX_PROPERTY_NAME_LENGTH


class ImportFilteringOptions(BaseModel):
    """`[import_filtering_opts]`: which URLs may be fetched for users (web-download, http
    locations). A non-empty allowed_* list wins over its disallowed_* list. Addresses that are
    not globally routable (private, loopback, link-local, CGNAT, unique-local...) are refused
    unless their host is in allowed_hosts."""

    allowed_schemes: GlanceList[str] = Field(
        default_factory=lambda: ["http", "https"], description="Schemes that may be fetched."
    )
    disallowed_schemes: GlanceList[str] = Field(
        default_factory=list, description="Schemes refused when allowed_schemes is empty."
    )
    allowed_hosts: GlanceList[str] = Field(
        default_factory=list, description="Host names or addresses that alone may be fetched."
    )
    disallowed_hosts: GlanceList[str] = Field(
        default_factory=list, description="Hosts refused when allowed_hosts is empty."
    )
    allowed_ports: GlanceList[int] = Field(
        default_factory=lambda: [80, 443], description="Ports that may be fetched."
    )
    disallowed_ports: GlanceList[int] = Field(
        default_factory=list, description="Ports refused when allowed_ports is empty."
    )

    @field_validator("allowed_schemes", "disallowed_schemes", "allowed_hosts", "disallowed_hosts")
    @classmethod
    def _lower_case(cls, value: list[str]) -> list[str]:
        # Compared with urllib's parse of a URL, which lower-cases scheme and host.
        return [item.lower() for item in value]


class ImageFormatOptions(BaseModel):
    """`[image_format]`: how uploaded and imported data is checked against its disk_format."""

    require_image_format_match: bool = Field(
        default=True,
        description=(
            "Inspect the data of uploads and imports (container_format bare) and refuse it when "
            "it does not match the image's disk_format."
        ),
    )
    gpt_safety_checks_nonfatal: GlanceList[str] = Field(
        default_factory=list,
        description=(
            "Safety checks (mbr, gptmbr) whose failure is only logged for data detected as "
            "gpt. Relaxes the GPT specification: use with caution."
        ),
    )


class TaskOptions(BaseModel):
    """`[task]`: background work (imports) and how long task records are kept."""

    work_dir: Path | None = Field(
        None,
        description=(
            "Deprecated: use [os_glance_tasks_store] filesystem_store_datadir. When set and that "
            "section names no directory, the tasks store uses this one."
        ),
    )
    task_time_to_live: int = Field(
        48, ge=0, description="Hours a finished task stays visible before it expires."
    )
    lease_time: int = Field(
        300,
        ge=10,
        description=(
            "Seconds a worker holds an import it claimed without reporting progress; after "
            "that a redelivered message may take the import over (the worker is presumed dead)."
        ),
    )
    requeue_pending_after: int = Field(
        300,
        ge=1,
        description=(
            "Seconds a task may stay pending (its message lost, e.g. the broker was down) "
            "before the scrubber sends its message again."
        ),
    )
    web_download_timeout: int = Field(
        21600,
        gt=0,
        description=(
            "Seconds a web-download fetch may take in all; the source must also bring each "
            "MiB within 60 seconds. Past either the task fails."
        ),
    )


class ImageImportOptions(BaseModel):
    """`[image_import_opts]` (glance-image-import.conf in Glance)."""

    image_import_plugins: GlanceList[str] = Field(
        default_factory=list,
        description=(
            "Plugins the worker runs, in this order, on the staged data of every import before "
            "it is written to the stores: no_op, image_decompression, image_conversion, "
            "inject_image_metadata. An unknown name stops glimpse-worker at start-up."
        ),
    )


class ImageConversionOptions(BaseModel):
    """`[image_conversion]`: the image_conversion import plugin."""

    output_format: Literal["qcow2", "raw", "vmdk"] = Field(
        "raw", description="Disk format the image_conversion plugin converts imports to."
    )
    convert_cpu_limit: int = Field(
        1800,
        gt=0,
        description=(
            "Seconds of CPU time `qemu-img convert` may use before it is killed (RLIMIT_CPU)."
        ),
    )
    convert_memory_limit: int = Field(
        2048,
        ge=512,
        description=(
            "Address space, in MiB, `qemu-img convert` may map (RLIMIT_AS); it fails past it."
        ),
    )
    convert_time_limit: int = Field(
        3600,
        gt=0,
        description=(
            "Seconds `qemu-img convert` may run, whatever it waits for, before it is killed "
            "and the import fails."
        ),
    )


class InjectMetadataOptions(BaseModel):
    """`[inject_metadata_properties]`: the inject_image_metadata import plugin."""

    ignore_user_roles: GlanceList[str] = Field(
        default_factory=lambda: ["admin"],
        description="Imports by a user with one of these roles get no injected properties.",
    )
    inject: GlanceDict = Field(
        default_factory=dict,
        description=(
            "Properties set on every imported image, as key:value pairs separated by commas, "
            "e.g. property1:value1,property2:value2."
        ),
    )

    @field_validator("inject")
    @classmethod
    def _property_names(cls, value: dict[str, str]) -> dict[str, str]:
        too_long = [key for key in value if len(key) > MAX_PROPERTY_NAME_LENGTH]
        if too_long:
            msg = f"property names longer than {MAX_PROPERTY_NAME_LENGTH} characters: {too_long}"
            raise ValueError(msg)
        return value
