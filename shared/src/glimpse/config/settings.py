"""The settings model. Every option, its default and its help text live here and only here.

Sources, highest priority first: constructor arguments, `GLIMPSE_*` environment variables
(`__` separates a section from its option), the glance-api.conf style file, the defaults below.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
from importlib.metadata import entry_points
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from glimpse.config.cache import CacheOptions, PasteDeployOptions
from glimpse.config.location_strategy import LocationStrategy, StoreTypeLocationStrategyOptions
from glimpse.config.notation import GlanceDict, GlanceList, parse_list
from glimpse.config.reserved import RESERVED_PREFIX, RESERVED_STORES, STAGING_STORE, TASKS_STORE
from glimpse.config.session import SessionOptions
from glimpse.config.units import parse_size
from glimpse.domain.tasks import KNOWN_METHODS as KNOWN_IMPORT_METHODS

CONFIG_ENV = "GLIMPSE_CONFIG"
TiB = 1024**4
FERNET_KEY_BYTES = 32
MAX_PROPERTY_NAME = 255  # the image_properties.name column
# Glance's single-store names (`stores` takes driver names or their old class paths,
# `default_store` a scheme) for the only stores Glimpse has without enabled_backends.
_LEGACY_FILE = frozenset({"file", "filesystem", "glance.store.filesystem.Store"})
_LEGACY_HTTP = frozenset({"http", "https", "glance.store.http.Store"})
_RESERVED_DEFAULT_DIRS = {STAGING_STORE: Path("data/staging"), TASKS_STORE: Path("data/tasks")}

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """Start-up stops: the configuration names an invalid value."""


class DatabaseOptions(BaseModel):
    connection: str = Field(
        "sqlite:///data/glimpse.sqlite",
        description=(
            "SQLAlchemy URL of the database. sqlite:// and postgresql:// URLs (also "
            "postgresql+psycopg2://) are served by their asyncio drivers."
        ),
    )
    max_pool_size: int = Field(10, ge=1, description="Connections kept open per process.")
    pool_timeout: float = Field(
        30,
        gt=0,
        description=(
            "Seconds a request waits for a free pooled connection before it fails with 503 "
            "(PostgreSQL; SQLite waits for its busy timeout)."
        ),
    )
    command_timeout: float = Field(
        30,
        gt=0,
        description=(
            "Seconds a PostgreSQL statement, or opening a connection, may take before the "
            "request fails with 503 (a database that hangs); its transaction is rolled back."
        ),
    )


class GlanceStoreOptions(BaseModel):
    default_backend: str | None = Field(
        None,
        description="Store id from enabled_backends that receives uploads by default.",
    )
    filesystem_store_datadir: Path = Field(
        Path("data/images"),
        description="Directory of the file store when a store section names none.",
    )
    stores: GlanceList[str] = Field(
        default_factory=list,
        description=(
            "Deprecated (Glance's single-store mode): the store types to load. Without "
            "enabled_backends Glimpse has one file store, so a type other than file or http "
            "stops start-up. Ignored when enabled_backends is set."
        ),
    )
    default_store: str | None = Field(
        None,
        description=(
            "Deprecated (Glance's single-store mode): the store type receiving uploads. Without "
            "enabled_backends only file (or filesystem) can be honoured; any other type stops "
            "start-up. Ignored when enabled_backends is set."
        ),
    )


class StoreOptions(BaseModel):
    """One `[<store id>]` section named by enabled_backends."""

    filesystem_store_datadir: Path | None = Field(
        None, description="Directory that holds this file store's image data."
    )
    store_description: str = Field("", description="Text shown to users for this store.")
    weight: int = Field(0, description="Higher weights are read first when data is in several.")

    # s3 stores (glance_store's names and defaults).
    s3_store_host: str | None = Field(
        None,
        description=(
            "Endpoint of the S3 or S3-compatible server, e.g. https://s3.example.com or "
            "127.0.0.1:9000 (http:// is assumed without a scheme). Required for s3 stores."
        ),
    )
    s3_store_region_name: str = Field(
        "",
        description="Region to sign requests for; empty derives it from an AWS host name, "
        "else us-east-1.",
    )
    s3_store_access_key: SecretStr | None = Field(
        None, description="Access key of the S3 user. Required for s3 stores; never logged."
    )
    s3_store_secret_key: SecretStr | None = Field(
        None, description="Secret key of the S3 user. Required for s3 stores; never logged."
    )
    s3_store_bucket: str | None = Field(
        None, description="Bucket that holds the image data. Required for s3 stores."
    )
    s3_store_create_bucket_on_put: bool = Field(
        default=False, description="Create the bucket on the first upload if it does not exist."
    )
    s3_store_bucket_url_format: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description=(
            "Addressing style: path (https://host/bucket/key, what most local S3-compatible "
            "servers need), virtual (https://bucket.host/key), or auto (botocore chooses)."
        ),
    )
    s3_store_large_object_size: int = Field(
        100,
        ge=0,
        description=(
            "MB: an upload that ends within this size and within one part is sent with a "
            "single PUT; larger ones use a multipart upload."
        ),
    )
    s3_store_large_object_chunk_size: int = Field(
        10,
        ge=5,
        description=(
            "MB per part of a multipart upload (S3's minimum is 5). An object may have at most "
            "10000 parts, so this also caps the object size."
        ),
    )
    s3_store_thread_pools: int = Field(
        10,
        ge=1,
        description=(
            "Most parts of one multipart upload sent at the same time (further capped at 2, "
            "which bounds the memory an upload holds)."
        ),
    )
    s3_store_cacert: str = Field(
        "", description="CA bundle to verify an https endpoint; empty uses botocore's bundle."
    )
    s3_store_request_timeout: int = Field(
        300,
        gt=0,
        description=(
            "Seconds one S3 request may take in all (a PutObject or an upload part included, "
            "and botocore's retries); a GET's body must bring each MiB within it."
        ),
    )

    # http stores (read-only; glance_store's names and defaults).
    https_insecure: bool = Field(
        default=False,
        description=(
            "Do not verify the certificate of https image servers. Glance's default is true; "
            "Glimpse verifies unless told otherwise. Ignored when https_ca_certificates_file "
            "is set."
        ),
    )
    https_ca_certificates_file: Path | None = Field(
        None, description="CA bundle that verifies https image servers."
    )
    http_proxy_information: GlanceDict = Field(
        default_factory=dict,
        description=(
            "Proxies as scheme:proxy pairs, e.g. http:10.0.0.1:3128, https:10.0.0.1:1080. "
            "Without it no proxy is used (the environment's proxy variables are not read)."
        ),
    )
    http_request_timeout: int = Field(
        60,
        gt=0,
        description=(
            "Seconds an http store request may take to answer (redirects included), and to "
            "bring each MiB of the data it reads."
        ),
    )

    @field_validator("http_proxy_information")
    @classmethod
    def _proxies(cls, value: dict[str, str]) -> dict[str, str]:
        empty = sorted(scheme for scheme, proxy in value.items() if not proxy)
        if empty:
            msg = f"no proxy given for {empty}; expected scheme:proxy pairs"
            raise ValueError(msg)
        return value


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
        too_long = [key for key in value if len(key) > MAX_PROPERTY_NAME]
        if too_long:
            msg = f"property names longer than {MAX_PROPERTY_NAME} characters: {too_long}"
            raise ValueError(msg)
        return value


class CeleryOptions(BaseModel):
    broker_url: str = Field(
        "filesystem://",
        description=(
            "Celery broker. filesystem:// needs no server (single machine); use "
            "redis://host:6379/0 or amqp://... in production."
        ),
    )
    broker_data_dir: Path = Field(
        Path("data/broker"), description="Message folder of the filesystem:// broker."
    )
    result_backend: str | None = Field(
        None, description="Celery result backend; defaults to the broker (or a folder)."
    )
    worker_concurrency: int = Field(2, ge=1, description="Job processes per glimpse-worker.")
    visibility_timeout: int = Field(
        3600,
        ge=1,
        description=(
            "Seconds a message taken by a worker stays invisible on a Redis or SQS broker "
            "before the broker hands it out again. Imports acknowledge their message only when "
            "done, so the message of a worker killed mid-import comes back after this. Keep it "
            "above [task] lease_time: a message that comes back while the dead worker's lease "
            "holds is dropped as a duplicate, and the task is then re-sent by the scrubber's "
            "requeue_pending once the lease runs out."
        ),
    )


class ScrubberOptions(BaseModel):
    wakeup_time: int = Field(
        300,
        ge=1,
        description=(
            "Seconds between scrubber passes (daemon mode). When unset here, [DEFAULT] "
            "wakeup_time (where glance-scrubber.conf has it) applies."
        ),
    )
    heartbeat_file: Path = Field(
        Path("data/scrubber.heartbeat"),
        description=(
            "File the daemon touches after each complete pass; glimpse-scrubber --check reads "
            "its age. Give every scrubber process its own."
        ),
    )
    lease_time: int = Field(
        600,
        ge=1,
        description=(
            "Seconds a claimed deletion, or an upload's hold on its saving image (renewed every "
            "third of it while the upload lasts), stays with the process that made it; after "
            "that the process is presumed dead: a scrubber takes the deletion over, and "
            "housekeeping puts the image back to queued."
        ),
    )
    deletion_retry_initial: int = Field(
        60,
        ge=1,
        description=(
            "Seconds before data that could not be deleted (its store down or no longer "
            "enabled, an http location) is tried again; the wait doubles with each failure."
        ),
    )
    deletion_retry_max: int = Field(
        3600, ge=1, description="Longest wait between two attempts to delete the same data."
    )


class HealthcheckOptions(BaseModel):
    """`[healthcheck]`: GET /healthcheck, as oslo.middleware's disable_by_file backend."""

    disable_by_file_path: Path | None = Field(
        None,
        description=(
            "While this file exists GET /healthcheck answers 503 DISABLED BY FILE, so a load "
            "balancer drains this node before it is stopped."
        ),
    )
    drain_delay: float = Field(
        0,
        ge=0,
        le=3600,
        description=(
            "Seconds glimpse-api keeps serving after SIGTERM before it stops accepting: "
            "meanwhile GET /healthcheck answers 503 SHUTTING DOWN and every response closes "
            "its connection, so a load balancer takes the node out first. Set it above the "
            "balancer's check interval times its fall count; 0 stops accepting at once."
        ),
    )


def _networks(value: object) -> object:
    """A Glance list of addresses and networks (CIDR) as ip_network objects."""
    value = parse_list(value)
    if isinstance(value, list):
        try:
            return [ipaddress.ip_network(item) for item in value]
        except (TypeError, ValueError) as exc:
            msg = f"expected addresses or networks (e.g. 10.0.0.0/24): {exc}"
            raise ValueError(msg) from None
    return value


_PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class MetricsOptions(BaseModel):
    """`[metrics]`: Prometheus metrics of the API (/metrics), the worker and the scrubber."""

    enabled: bool = Field(
        default=True, description="Serve metrics: the API on /metrics, the others on `port`."
    )
    allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ipaddress.ip_network(n) for n in _PRIVATE_NETWORKS],
        description=(
            "Peers (addresses or CIDR networks) the API's /metrics answers; others get 404. "
            "A balancer in front of the API should refuse /metrics itself: behind it every "
            "request comes from the balancer's address."
        ),
    )
    bind_host: str = Field(
        "127.0.0.1", description="Address the worker's and the scrubber's metrics server use."
    )
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description=(
            "Port of the metrics server of glimpse-worker and glimpse-scrubber (GET /metrics); "
            "0 starts none. Each process on one host needs its own."
        ),
    )

    _parse_networks = field_validator("allowed_networks", mode="before")(_networks)


class OsloPolicyOptions(BaseModel):
    policy_file: Path | None = Field(
        None,
        description=(
            "YAML or JSON file overriding the default policy rules (Glance's rule names, e.g. "
            "add_image: role:admin). A relative path is relative to the config file's "
            "directory. Unset: the built-in secure-RBAC defaults."
        ),
    )

    @field_validator("policy_file")
    @classmethod
    def _resolve(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from glimpse.config.sources import CURRENT_FILE  # noqa: PLC0415 -- avoids a cycle

        config_file = CURRENT_FILE.get()
        if not value.is_absolute() and config_file is not None:
            value = config_file.parent / value
        if not value.is_file():
            msg = f"policy file {value} does not exist"
            raise ValueError(msg)
        # Parse it now so a broken file stops start-up with the option named, not later.
        from oslo_policy.policy import parse_file_contents  # noqa: PLC0415 -- only when set

        try:
            parsed = parse_file_contents(value.read_text(encoding="utf-8"))
        except ValueError as exc:
            msg = f"policy file {value} is not valid YAML or JSON: {exc}"
            raise ValueError(msg) from None
        if not isinstance(parsed, dict):
            msg = f"policy file {value} must map rule names to rules"
            raise ValueError(msg)  # noqa: TRY004 -- pydantic reports ValueError, not TypeError
        return value

    enforce_new_defaults: bool = Field(
        default=True,
        description=(
            "false: each rule Glance deprecated in Wallaby also passes by its old default "
            "(mostly anyone), with Glance's ownership checks for changes, as oslo.policy and "
            "Glance do. Meant for an upgrade from legacy policies only."
        ),
    )
    enforce_scope: bool = Field(
        default=True,
        description=(
            "Accepted for older configurations and not used: oslo.policy 6 always enforces "
            "scope, so system- and domain-scoped tokens are refused by the image API's "
            "project-scoped rules (false is logged and ignored)."
        ),
    )

    @model_validator(mode="after")
    def _scope_always_enforced(self) -> OsloPolicyOptions:
        if not self.enforce_scope:
            log.warning(
                "[oslo_policy] enforce_scope = false is ignored: scope is always enforced, "
                "as in oslo.policy 6 (system- and domain-scoped tokens are refused)"
            )
        return self


class KeystoneAuthTokenOptions(SessionOptions):
    """`[keystone_authtoken]`, with keystonemiddleware's option names (auth_strategy=keystone)
    and keystoneauth's session options (SessionOptions)."""

    www_authenticate_uri: str | None = Field(
        None,
        description=(
            "Public Identity endpoint sent to unauthenticated clients in "
            'WWW-Authenticate: Keystone uri="...". Defaults to auth_url without /v3.'
        ),
    )
    auth_url: str | None = Field(
        None,
        description="Identity API endpoint the service authenticates at and validates tokens "
        "with, e.g. http://keystone:5000/v3 (/v3 is added when missing).",
    )
    auth_type: Literal["password", "v3password"] = Field(
        "password", description="How the service authenticates itself (password only)."
    )
    username: str | None = Field(None, description="The service user's name.")
    password: SecretStr | None = Field(None, description="The service user's password.")
    project_name: str | None = Field(
        None, description="Project the service token is scoped to (usually 'service')."
    )
    user_domain_name: str = Field("Default", description="Domain of the service user.")
    project_domain_name: str = Field("Default", description="Domain of project_name.")
    service_token_roles: GlanceList[str] = Field(
        default_factory=lambda: ["service"],
        description="An X-Service-Token must carry one of these roles (comma-separated list).",
    )
    service_token_roles_required: bool = Field(
        default=True,
        description="Reject an X-Service-Token without a role from service_token_roles "
        "(false: accept it and log a warning, the old keystonemiddleware behaviour).",
    )
    token_cache_time: int = Field(
        300,
        ge=-1,
        description=(
            "Seconds a token validation is reused (never past the token's expiry); -1 disables "
            "the cache. A token revoked in Keystone stays accepted until its entry ages out."
        ),
    )
    token_cache_max_entries: int = Field(
        10000, ge=1, description="Validations kept in each API process's memory (LRU)."
    )
    cache_redis_url: str | None = Field(
        None,
        description=(
            "redis://host:6379/N: share token validations between API processes and nodes. "
            "Keys are SHA-256 hashes of tokens, never tokens. Redis must be trusted."
        ),
    )
    memcached_servers: GlanceList[str] = Field(
        default_factory=list,
        description="Accepted for glance-api.conf compatibility and not used: see cache_redis_url.",
    )
    http_connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the Identity service to answer."
    )
    http_request_timeout: float = Field(
        15.0,
        gt=0,
        description=(
            "Seconds one request to the Identity service may take in all (connecting, sending, "
            "the whole answer); also the longest a token waits for a validation slot. "
            "keystoneauth's `timeout`, when set, replaces it."
        ),
    )
    validation_concurrency: int = Field(
        10,
        ge=1,
        description=(
            "Token validations each API process asks of the Identity service at once; more "
            "wait their turn, so a flood of tokens cannot swamp it or the process's pool."
        ),
    )
    invalid_token_cache_time: int = Field(
        10,
        ge=0,
        description=(
            "Seconds a token the Identity service refused is refused again without asking it "
            "(kept in memory by its SHA-256 hash); 0 disables."
        ),
    )

    @field_validator("cache_redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            msg = f"expected a redis://, rediss:// or unix:// URL, got {value!r}"
            raise ValueError(msg)
        return value

    @property
    def identity_url(self) -> str:
        """auth_url ending in /v3 (keystonemiddleware accepts both forms)."""
        base = (self.auth_url or "").rstrip("/")
        return base if base.endswith("/v3") else f"{base}/v3"

    def password_identity(self) -> dict[str, Any]:
        """The service user's credentials as Keystone's `auth.identity` wants them."""
        password = self.password.get_secret_value() if self.password else ""
        return {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": self.username,
                    "domain": {"name": self.user_domain_name},
                    "password": password,
                }
            },
        }

    @property
    def call_deadline(self) -> float:
        """Seconds one token validation or service authentication may take in all."""
        return self.timeout if self.timeout is not None else self.http_request_timeout

    @property
    def challenge_uri(self) -> str:
        if self.www_authenticate_uri:
            return self.www_authenticate_uri
        return self.identity_url.removesuffix("/v3")


class KeyManagerOptions(BaseModel):
    """`[key_manager]`: castellan's section in Glance; Glimpse speaks Barbican itself."""

    backend: Literal["barbican", "none"] = Field(
        "barbican",
        description=(
            "Key manager holding cinder_encryption_key_id secrets. `none` records key cleanups "
            "but never performs them (they wait until a backend is configured)."
        ),
    )
    token_encryption_key: SecretStr | None = Field(
        None,
        description=(
            "Fernet key (urlsafe base64 of 32 bytes) that encrypts a deleting user's token kept "
            "for a pending key cleanup. Without it no token is kept: the cleanup relies on a "
            "Keystone trust or the service credentials."
        ),
    )
    cleanup_retry_initial: int = Field(
        60, ge=0, description="Seconds before the first retry of a failed key deletion."
    )
    cleanup_retry_max: int = Field(
        3600, ge=0, description="Longest wait between retries (the wait doubles each time)."
    )

    @field_validator("token_encryption_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.get_secret_value().encode("ascii"))
        except (ValueError, UnicodeError):
            raw = b""
        if len(raw) != FERNET_KEY_BYTES:
            msg = "expected a Fernet key: urlsafe base64 of 32 bytes"
            raise ValueError(msg)
        return value


class BarbicanOptions(BaseModel):
    """`[barbican]`, castellan's option names (the subset a direct REST client needs)."""

    barbican_endpoint: str | None = Field(
        None,
        description=(
            "Barbican's URL, e.g. http://barbican:9311. Required for key cleanup "
            "(Glimpse does not look it up in the catalog)."
        ),
    )
    barbican_api_version: str = Field("v1", description="API version in Barbican's URLs.")
    auth_endpoint: str | None = Field(
        None,
        description=(
            "Keystone URL for the trusts and trust-scoped tokens of key cleanup; "
            "defaults to [keystone_authtoken] auth_url."
        ),
    )
    verify_ssl: bool = Field(default=True, description="Verify Barbican's TLS certificate.")
    verify_ssl_path: Path | None = Field(
        None, description="CA bundle for Barbican's certificate (with verify_ssl)."
    )


class Settings(CacheOptions, BaseSettings):
    """Options of `[DEFAULT]` are top-level fields (the image cache's come from CacheOptions);
    other sections are nested models."""

    model_config = SettingsConfigDict(
        env_prefix="GLIMPSE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    bind_host: str = Field("127.0.0.1", description="Address the API listens on.")
    bind_port: int = Field(9292, ge=0, le=65535, description="Port the API listens on.")
    workers: int = Field(1, ge=1, description="Number of API worker processes.")
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
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
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
        description="Bytes of image data a project may store; 0 is unlimited. Units B/KB/MB/GB/TB.",
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
            "Import methods offered by GET /v2/info/import; glance-direct and web-download run "
            "in this release, the others are refused (400) at import time."
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

    database: DatabaseOptions = Field(default_factory=DatabaseOptions)
    glance_store: GlanceStoreOptions = Field(default_factory=GlanceStoreOptions)
    task: TaskOptions = Field(default_factory=TaskOptions)
    image_format: ImageFormatOptions = Field(default_factory=ImageFormatOptions)
    import_filtering_opts: ImportFilteringOptions = Field(default_factory=ImportFilteringOptions)
    celery: CeleryOptions = Field(default_factory=CeleryOptions)
    image_import_opts: ImageImportOptions = Field(default_factory=ImageImportOptions)
    image_conversion: ImageConversionOptions = Field(default_factory=ImageConversionOptions)
    inject_metadata_properties: InjectMetadataOptions = Field(default_factory=InjectMetadataOptions)
    scrubber: ScrubberOptions = Field(default_factory=ScrubberOptions)
    healthcheck: HealthcheckOptions = Field(default_factory=HealthcheckOptions)
    metrics: MetricsOptions = Field(default_factory=MetricsOptions)
    oslo_policy: OsloPolicyOptions = Field(default_factory=OsloPolicyOptions)
    keystone_authtoken: KeystoneAuthTokenOptions = Field(default_factory=KeystoneAuthTokenOptions)
    key_manager: KeyManagerOptions = Field(default_factory=KeyManagerOptions)
    barbican: BarbicanOptions = Field(default_factory=BarbicanOptions)
    paste_deploy: PasteDeployOptions = Field(default_factory=PasteDeployOptions)
    store_type_location_strategy: StoreTypeLocationStrategyOptions = Field(
        default_factory=StoreTypeLocationStrategyOptions
    )
    stores: dict[str, StoreOptions] = Field(
        default_factory=dict,
        description=(
            "Sections named by enabled_backends and the reserved os_glance_staging_store and "
            "os_glance_tasks_store sections (filled from the file or environment)."
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return _networks(value)

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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        default = self.glance_store.default_backend
        if default is not None and default not in self.enabled_backends:
            msg = f"default_backend {default!r} is not in enabled_backends"
            raise ValueError(msg)
        if self.auth_strategy == "keystone":
            keystone = self.keystone_authtoken
            required = ("auth_url", "username", "password", "project_name")
            missing = [name for name in required if not getattr(keystone, name)]
            if missing:
                msg = f"auth_strategy=keystone needs [keystone_authtoken] {', '.join(missing)}"
                raise ValueError(msg)
        self._check_legacy_stores()
        if "wakeup_time" not in self.scrubber.model_fields_set:
            # glance-scrubber.conf's [DEFAULT] wakeup_time; Glimpse's [scrubber] one wins.
            self.scrubber.wakeup_time = self.wakeup_time
        self._check_shared_datadirs()
        if self.paste_deploy.caching and self.image_cache_dir is None:
            # Glance would not start; earlier Glimpse releases ignored the flavor, so a config
            # they ran keeps running, without a cache.
            log.warning(
                "[paste_deploy] flavor = %s: no image cache without image_cache_dir",
                self.paste_deploy.flavor,
            )
        self._warn_deprecated()
        return self

    @property
    def cache_serving(self) -> bool:
        """Downloads go through the image cache (Glance's caching paste filter)."""
        return self.cache_enabled and self.paste_deploy.caching

    def _check_legacy_stores(self) -> None:
        """Glance's pre-Train `[glance_store] stores` and `default_store`: honoured only where
        they describe the one file store, never silently replaced by it."""
        legacy = self.glance_store
        named = sorted({"stores", "default_store"} & legacy.model_fields_set)
        if not named:
            return
        if self.multistore:
            log.warning("[glance_store] %s ignored: enabled_backends is set", " and ".join(named))
            return
        advice = (
            "without enabled_backends Glimpse has only its file store; name the stores in "
            f"[DEFAULT] enabled_backends (types: {', '.join(store_types())})"
        )
        default = legacy.default_store
        if default is not None and default not in _LEGACY_FILE:
            msg = f"[glance_store] default_store = {default} cannot be honoured: {advice}"
            raise ValueError(msg)
        unserved = [kind for kind in legacy.stores if kind not in _LEGACY_FILE | _LEGACY_HTTP]
        if unserved:
            names = ", ".join(unserved)
            msg = f"[glance_store] stores names {names}, which cannot be honoured: {advice}"
            raise ValueError(msg)

    def _check_shared_datadirs(self) -> None:
        # Two file stores in one directory would delete each other's data (and the staging
        # cleanup would remove images): refuse to start instead.
        owners: dict[Path, str] = {}
        file_stores = [sid for sid, kind in self.enabled_backends.items() if kind == "file"]
        for store_id in (*file_stores, *RESERVED_STORES):
            datadir = Path(os.path.abspath(self.store_datadir(store_id)))  # noqa: PTH100 -- no symlink resolution at config time
            if datadir in owners:
                msg = (
                    f"stores {owners[datadir]!r} and {store_id!r} share the directory "
                    f"{datadir}; each file store needs its own filesystem_store_datadir"
                )
                raise ValueError(msg)
            owners[datadir] = store_id

    def _warn_deprecated(self) -> None:
        if self.node_staging_uri is not None:
            log.warning(
                "[DEFAULT] node_staging_uri is deprecated; use [%s] filesystem_store_datadir",
                STAGING_STORE,
            )
        if self.task.work_dir is not None:
            log.warning(
                "[task] work_dir is deprecated; use [%s] filesystem_store_datadir", TASKS_STORE
            )

    @property
    def multistore(self) -> bool:
        """True when the operator configured enabled_backends (Glance's multi-store mode);
        the built-in single file store is not multi-store, as in Glance."""
        return "enabled_backends" in self.model_fields_set

    @property
    def default_store(self) -> str:
        return self.glance_store.default_backend or next(iter(self.enabled_backends))

    def store_options(self, store_id: str) -> StoreOptions:
        return self.stores.get(store_id) or StoreOptions()

    def store_datadir(self, store_id: str) -> Path:
        configured = self.store_options(store_id).filesystem_store_datadir
        if configured is not None:
            return configured
        if store_id == STAGING_STORE:
            if self.node_staging_uri is not None:
                return Path(self.node_staging_uri.removeprefix("file://"))
            return _RESERVED_DEFAULT_DIRS[store_id]
        if store_id == TASKS_STORE:
            return self.task.work_dir or _RESERVED_DEFAULT_DIRS[store_id]
        return self.glance_store.filesystem_store_datadir

    @property
    def binds_loopback(self) -> bool:
        if self.bind_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind_host).is_loopback
        except ValueError:
            return False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 -- no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 -- nor secret dirs
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from glimpse.config.sources import GlanceIniSource  # noqa: PLC0415 -- avoids a cycle

        return (init_settings, env_settings, GlanceIniSource(settings_cls))


def store_types() -> list[str]:
    """The store types this installation has (the `glimpse.stores` entry points)."""
    return sorted(ep.name for ep in entry_points(group="glimpse.stores"))


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file: an explicit --config-file wins over GLIMPSE_CONFIG."""
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:  # noqa: ANN401 -- any option
    """Build the settings at an entry point; raise ConfigError naming the option and the file."""
    from glimpse.config import sources  # noqa: PLC0415 -- avoids a cycle

    path = config_path(config_file)
    if path is not None and not path.is_file():
        msg = f"config file {path} does not exist"
        raise ConfigError(msg)
    token = sources.CURRENT_FILE.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(sources.describe_errors(exc, path)) from None
    except sources.ConfigFileError as exc:
        msg = f"config file {path} cannot be read: {exc}"
        raise ConfigError(msg) from None
    finally:
        sources.CURRENT_FILE.reset(token)
