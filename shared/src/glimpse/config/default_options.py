"""The `[DEFAULT]` options (the image cache's are in CacheOptions): the top-level fields of
Settings."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from glimpse.config.cache import CacheOptions
from glimpse.config.location_strategy import LocationStrategy
from glimpse.config.notation import GlanceDict, GlanceList, Network
from glimpse.config.reserved import RESERVED_PREFIX
from glimpse.config.store_options import store_types
from glimpse.config.units import parse_size
from glimpse.domain.tasks import KNOWN_METHODS as KNOWN_IMPORT_METHODS

TiB = 1024**4


class DefaultOptions(CacheOptions):
    """`[DEFAULT]`, in the order of the sample configuration."""

    bind_host: str = Field("127.0.0.1", description="Address the API listens on.")
    bind_port: int = Field(9292, ge=0, le=65535, description="Port the API listens on.")
    workers: int = Field(
        1,
        ge=1,
        description=(
            "Number of API worker processes. With 2 or more, glimpse-api forks them from a "
            "master that has loaded the application (its memory is shared), each listening on "
            "a socket of its own (SO_REUSEPORT: the kernel spreads connections over them); one "
            "that dies is started again, and SIGHUP replaces them all."
        ),
    )
    debug: bool = Field(
        default=False,
        description=(
            "Log at DEBUG level (API, worker and scrubber), as oslo.log's debug. Libraries whose "
            "debug lines carry request headers or every byte (botocore, urllib3, aiosqlite, "
            "httpcore...) stay quieter. GLIMPSE_LOG_LEVEL, when set, wins."
        ),
    )
    graceful_shutdown_timeout: int = Field(
        60,
        ge=0,
        description=(
            "Seconds glimpse-api lets requests in progress (uploads, downloads) finish once it "
            "stops accepting, before it cancels them and exits; 0 waits for them all."
        ),
    )
    use_json: bool = Field(
        default=False,
        description=(
            "Log JSON lines (one object a line: time, level, logger, message, process, "
            "request_id, user_id, project_id, exception) instead of text, in the API, the "
            "worker and the scrubber."
        ),
    )
    http_keepalive: bool = Field(
        default=True,
        description="Keep client connections open between requests (false: close each after "
        "its response).",
    )
    client_socket_timeout: int = Field(
        900,
        ge=0,
        description="Seconds an idle kept-alive client connection stays open; 0 means no limit.",
    )
    auth_strategy: Literal["noauth", "trusted-proxy", "keystone"] = Field(
        "noauth",
        description=(
            "noauth: every request acts as the admin of one project (development only). "
            "trusted-proxy: identity comes from X-Identity-Status/X-User-Id/X-Project-Id/"
            "X-Roles headers set by an authenticating proxy in front of the API. "
            "keystone: X-Auth-Token is validated with Keystone ([keystone_authtoken]); "
            "the default when [paste_deploy] flavor starts with keystone."
        ),
    )
    noauth_allow_public_bind: bool = Field(
        default=False,
        description="Allow auth_strategy=noauth on an address other than loopback.",
    )
    noauth_project_id: str = Field(
        "glimpse", description="Project every request belongs to under auth_strategy=noauth."
    )
    trusted_proxies: GlanceList[Network] = Field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1")],
        description=(
            "auth_strategy=trusted-proxy: addresses and networks (CIDR) of the authenticating "
            "proxies. Identity headers are accepted only on connections from them; any other "
            "peer gets 401 whatever it sends."
        ),
    )
    image_size_cap: int = Field(
        TiB, ge=1, le=9223372036854775807, description="Largest image in bytes (upload stops)."
    )
    user_storage_quota: Annotated[int, NoDecode] = Field(
        0,
        description=(
            "Bytes of image data a project may store; 0 is unlimited. Units B/KB/MB/GB/TB. "
            "Not used when use_keystone_limits is on."
        ),
    )
    use_keystone_limits: bool = Field(
        default=False,
        description=(
            "Enforce the project limits registered in Keystone (unified limits, see "
            "[oslo_limit]) instead of user_storage_quota: image_size_total and "
            "image_stage_total (MiB), image_count_total, image_count_uploading. A resource "
            "without a registered limit allows nothing."
        ),
    )
    image_property_quota: int = Field(128, description="Extra properties per image; <0 unlimited.")
    image_tag_quota: int = Field(128, description="Tags per image; negative is unlimited.")
    image_member_quota: int = Field(128, description="Members per image; negative is unlimited.")
    image_location_quota: int = Field(10, description="Locations per image; negative is unlimited.")
    api_limit_max: int = Field(1000, ge=1, description="Most items a list request returns.")
    limit_param_default: int = Field(25, ge=1, description="Items a list returns without limit.")
    enabled_backends: GlanceDict = Field(
        default_factory=lambda: {"file": "file"},
        description="Stores as id:type pairs, e.g. fast:file, cheap:file.",
    )
    delayed_delete: bool = Field(
        default=False,
        description=(
            "Keep a deleted image's data (status pending_delete) until the scrubber removes it "
            "after scrub_time; until then glimpse-scrubber --restore can bring the image back."
        ),
    )
    scrub_time: int = Field(
        0, ge=0, description="Seconds the data of a pending_delete image is kept before scrubbing."
    )
    scrub_pool_size: int = Field(1, ge=1, description="Deletions the scrubber runs at once.")
    wakeup_time: int = Field(
        300,
        ge=1,
        description=(
            "Seconds between scrubber passes, where glance-scrubber.conf has it; "
            "[scrubber] wakeup_time, when set, wins."
        ),
    )
    daemon: bool = Field(
        default=False,
        description=(
            "glimpse-scrubber keeps running, a pass every wakeup_time, as with --daemon "
            "(--nodaemon overrides it for one run)."
        ),
    )
    show_image_direct_url: bool = Field(
        default=False, description="Show the data location of an image as direct_url."
    )
    show_multiple_locations: bool = Field(
        default=False, description="Show all data locations of an image as locations."
    )
    location_strategy: LocationStrategy = Field(
        "location_order",
        description=(
            "Order in which an image's locations are read (a failed read falls back to the "
            "next) and shown in locations and direct_url. location_order: by store weight, "
            "then as added. store_type: the types of [store_type_location_strategy] "
            "store_type_preference first, in that order, then by weight."
        ),
    )
    location_add_timeout: int = Field(
        600,
        gt=0,
        description=(
            "Seconds a worker may take to read the data of a location added with POST "
            "/v2/images/{id}/locations (to hash it), on each attempt."
        ),
    )
    do_secure_hash: bool = Field(
        default=True,
        description=(
            "A location added with POST /v2/images/{id}/locations has its data read to compute "
            "checksum and os_hash_value (and to check validation_data). When false the image "
            "takes the caller's validation_data as its hash, unchecked."
        ),
    )
    http_retries: int = Field(
        3,
        ge=1,
        description="Attempts a worker makes at reading a location's data to hash it.",
    )
    hashing_algorithm: str = Field(
        "sha512", description="hashlib algorithm of os_hash_value (the multihash)."
    )
    public_endpoint: str | None = Field(
        None, description="Public URL of the API, used in version links instead of the request's."
    )
    enabled_import_methods: GlanceList[str] = Field(
        default_factory=lambda: ["glance-direct", "web-download", "copy-image"],
        description=(
            "Import methods offered by GET /v2/info/import (glance-direct, web-download, "
            "copy-image, glance-download). glance-download needs [key_manager] "
            "token_encryption_key: the caller's token waits, encrypted, for the worker."
        ),
    )
    node_staging_uri: str | None = Field(
        None,
        description=(
            "Deprecated: use [os_glance_staging_store] filesystem_store_datadir. A file:///path "
            "URI; when set and that section names no directory, staging uses this path."
        ),
    )
    metadata_source_path: Path = Field(
        Path("etc/metadefs"),
        description=(
            "Directory of metadata definition files (Glance's JSON format) that glimpse-manage "
            "db load_metadefs reads and db export_metadefs writes when --path is not given."
        ),
    )

    @field_validator("enabled_import_methods")
    @classmethod
    def _import_methods(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(KNOWN_IMPORT_METHODS))
        if unknown:
            msg = f"unknown import methods {unknown}; known: {list(KNOWN_IMPORT_METHODS)}"
            raise ValueError(msg)
        return value

    @field_validator("user_storage_quota", mode="before")
    @classmethod
    def _quota(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str | int) else value

    @field_validator("hashing_algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        import hashlib  # noqa: PLC0415 -- only needed to validate this one option

        if value not in hashlib.algorithms_available:
            msg = f"{value!r} is not a hashlib algorithm"
            raise ValueError(msg)
        return value

    @field_validator("node_staging_uri")
    @classmethod
    def _staging_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("file://"):
            msg = f"expected a file:///path URI, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("enabled_backends")
    @classmethod
    def _backends(cls, value: dict[str, str]) -> dict[str, str]:
        known = store_types()
        for store_id, store_type in value.items():
            if store_id.startswith(RESERVED_PREFIX):
                msg = (
                    f"store id {store_id!r} is reserved: ids starting with {RESERVED_PREFIX!r} "
                    "name Glimpse's own staging and tasks stores and cannot be enabled"
                )
                raise ValueError(msg)
            if store_type not in known:
                msg = f"store {store_id!r} has unsupported type {store_type!r} (known: {known})"
                raise ValueError(msg)
        return value

    @property
    def binds_loopback(self) -> bool:
        if self.bind_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind_host).is_loopback
        except ValueError:
            return False
