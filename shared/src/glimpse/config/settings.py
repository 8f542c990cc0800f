"""The settings model. Every option, its default and its help text live here and only here.

Sources, highest priority first: constructor arguments, `GLIMPSE_*` environment variables
(`__` separates a section from its option), the glance-api.conf style file, the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
from importlib.metadata import entry_points
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

from glimpse.config.units import parse_size

CONFIG_ENV = "GLIMPSE_CONFIG"
TiB = 1024**4


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


class GlanceStoreOptions(BaseModel):
    default_backend: str | None = Field(
        None,
        description="Store id from enabled_backends that receives uploads by default.",
    )
    filesystem_store_datadir: Path = Field(
        Path("data/images"),
        description="Directory of the file store when a store section names none.",
    )


class StoreOptions(BaseModel):
    """One `[<store id>]` section named by enabled_backends."""

    filesystem_store_datadir: Path | None = Field(
        None, description="Directory that holds this file store's image data."
    )
    store_description: str = Field("", description="Text shown to users for this store.")
    weight: int = Field(0, description="Higher weights are read first when data is in several.")


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


class ScrubberOptions(BaseModel):
    wakeup_time: int = Field(300, ge=1, description="Seconds between scrubber passes (--daemon).")


def _split_list(value: object) -> object:
    """oslo.config ListOpt notation: `a, b, c`."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class KeystoneAuthTokenOptions(BaseModel):
    """`[keystone_authtoken]`, with keystonemiddleware's option names (auth_strategy=keystone)."""

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
    service_token_roles: Annotated[list[str], NoDecode] = Field(
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
    memcached_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accepted for glance-api.conf compatibility and not used: see cache_redis_url.",
    )
    http_connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the Identity service to answer."
    )
    insecure: bool = Field(default=False, description="Skip TLS verification of auth_url.")
    cafile: Path | None = Field(None, description="CA bundle that signs auth_url's certificate.")

    @field_validator("service_token_roles", "memcached_servers", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

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

    @property
    def challenge_uri(self) -> str:
        if self.www_authenticate_uri:
            return self.www_authenticate_uri
        return self.identity_url.removesuffix("/v3")


def _parse_backends(value: object) -> object:
    """Accept Glance's `id:type, id:type` notation as well as a mapping."""
    if isinstance(value, str):
        backends: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            store_id, sep, store_type = item.partition(":")
            if not sep or not store_id.strip() or not store_type.strip():
                msg = f"expected id:type pairs separated by commas, got {item!r}"
                raise ValueError(msg)
            backends[store_id.strip()] = store_type.strip()
        return backends
    return value


class Settings(BaseSettings):
    """Options of `[DEFAULT]` are top-level fields; other sections are nested models."""

    model_config = SettingsConfigDict(
        env_prefix="GLIMPSE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    bind_host: str = Field("127.0.0.1", description="Address the API listens on.")
    bind_port: int = Field(9292, ge=0, le=65535, description="Port the API listens on.")
    workers: int = Field(1, ge=1, description="Number of API worker processes.")
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
    api_limit_max: int = Field(1000, ge=1, description="Most items a list request returns.")
    limit_param_default: int = Field(25, ge=1, description="Items a list returns without limit.")
    enabled_backends: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"file": "file"},
        description="Stores as id:type pairs, e.g. fast:file, cheap:file.",
    )
    show_image_direct_url: bool = Field(
        default=False, description="Show the data location of an image as direct_url."
    )
    show_multiple_locations: bool = Field(
        default=False, description="Show all data locations of an image as locations."
    )
    hashing_algorithm: str = Field(
        "sha512", description="hashlib algorithm of os_hash_value (the multihash)."
    )
    public_endpoint: str | None = Field(
        None, description="Public URL of the API, used in version links instead of the request's."
    )

    database: DatabaseOptions = Field(default_factory=DatabaseOptions)
    glance_store: GlanceStoreOptions = Field(default_factory=GlanceStoreOptions)
    celery: CeleryOptions = Field(default_factory=CeleryOptions)
    scrubber: ScrubberOptions = Field(default_factory=ScrubberOptions)
    keystone_authtoken: KeystoneAuthTokenOptions = Field(default_factory=KeystoneAuthTokenOptions)
    stores: dict[str, StoreOptions] = Field(
        default_factory=dict,
        description="Sections named by enabled_backends (filled from the file or environment).",
    )

    @field_validator("enabled_backends", mode="before")
    @classmethod
    def _backends(cls, value: object) -> object:
        return _parse_backends(value)

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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        known = sorted(ep.name for ep in entry_points(group="glimpse.stores"))
        for store_id, store_type in self.enabled_backends.items():
            if store_type not in known:
                msg = f"store {store_id!r} has unsupported type {store_type!r} (known: {known})"
                raise ValueError(msg)
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
        return self

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
        return (
            self.store_options(store_id).filesystem_store_datadir
            or self.glance_store.filesystem_store_datadir
        )

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


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file: an explicit --config-file wins over GLIMPSE_CONFIG."""
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:  # noqa: ANN401
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
    finally:
        sources.CURRENT_FILE.reset(token)
