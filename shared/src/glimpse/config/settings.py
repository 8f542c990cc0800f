"""The settings model: Settings gathers the `[DEFAULT]` options (DefaultOptions) and one nested
model per section; the rules that span sections live here. Every option, its default and its
help text are in the *_options modules (and cache, session, location_strategy).

Sources, highest priority first: constructor arguments, `GLIMPSE_*` environment variables
(`__` separates a section from its option), the glance-api.conf style file, the defaults.
load_settings (glimpse.config.loader) builds it at an entry point.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from glimpse.config.auth_options import (
    BarbicanOptions,
    KeyManagerOptions,
    KeystoneAuthTokenOptions,
    OsloPolicyOptions,
)
from glimpse.config.cache import PasteDeployOptions
from glimpse.config.default_options import DefaultOptions
from glimpse.config.glance_download import GlanceDownloadOptions
from glimpse.config.import_options import (
    ImageConversionOptions,
    ImageFormatOptions,
    ImageImportOptions,
    ImportFilteringOptions,
    InjectMetadataOptions,
    TaskOptions,
)
from glimpse.config.location_strategy import StoreTypeLocationStrategyOptions
from glimpse.config.process_options import (
    CeleryOptions,
    DatabaseOptions,
    HealthcheckOptions,
    MetricsOptions,
    ScrubberOptions,
)
from glimpse.config.reserved import RESERVED_STORES, STAGING_STORE, TASKS_STORE
from glimpse.config.sources import CURRENT_FILE, GlanceIniSource
from glimpse.config.store_options import GlanceStoreOptions, StoreOptions, store_types
from glimpse.domain.tasks import GLANCE_DOWNLOAD

# Glance's single-store names (`stores` takes driver names or their old class paths,
# `default_store` a scheme) for the only stores Glimpse has without enabled_backends.
_LEGACY_FILE = frozenset({"file", "filesystem", "glance.store.filesystem.Store"})
_LEGACY_HTTP = frozenset({"http", "https", "glance.store.http.Store"})
_RESERVED_DEFAULT_DIRS = {STAGING_STORE: Path("data/staging"), TASKS_STORE: Path("data/tasks")}

log = logging.getLogger(__name__)


def _keep_sections(stores: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """The store sections named in `keep`; each option of the others is logged as ignored."""
    path = CURRENT_FILE.get()
    origin = path if path is not None else "the environment"
    for section in sorted(set(stores) - keep):
        options = stores[section]
        if isinstance(options, BaseModel):
            options = options.model_dump(exclude_unset=True)
        for option in options:
            log.warning("Ignoring unknown option [%s] %s in %s", section, option, origin)
    return {store_id: options for store_id, options in stores.items() if store_id in keep}


class Settings(DefaultOptions, BaseSettings):
    """Options of `[DEFAULT]` are top-level fields (DefaultOptions); other sections are nested
    models."""

    model_config = SettingsConfigDict(
        env_prefix="GLIMPSE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    database: DatabaseOptions = Field(default_factory=DatabaseOptions)
    glance_store: GlanceStoreOptions = Field(default_factory=GlanceStoreOptions)
    task: TaskOptions = Field(default_factory=TaskOptions)
    image_format: ImageFormatOptions = Field(default_factory=ImageFormatOptions)
    import_filtering_opts: ImportFilteringOptions = Field(default_factory=ImportFilteringOptions)
    celery: CeleryOptions = Field(default_factory=CeleryOptions)
    image_import_opts: ImageImportOptions = Field(default_factory=ImageImportOptions)
    image_conversion: ImageConversionOptions = Field(default_factory=ImageConversionOptions)
    glance_download_properties: GlanceDownloadOptions = Field(default_factory=GlanceDownloadOptions)
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

    @field_validator("stores", mode="before")
    @classmethod
    def _enabled_stores(cls, value: object, info: ValidationInfo) -> object:
        # The file source hands over every section it does not know (see sources); only those
        # enabled_backends names (or a reserved store) are store sections.
        if not isinstance(value, dict):
            return value
        enabled = info.data.get("enabled_backends", {})
        return _keep_sections(value, {*enabled, *RESERVED_STORES})

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.multistore:
            # Without enabled_backends the built-in file store has no section, as in Glance.
            self.stores = _keep_sections(self.stores, set(RESERVED_STORES))
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
        if GLANCE_DOWNLOAD in self.enabled_import_methods and (
            self.key_manager.token_encryption_key is None
        ):
            # The worker fetches the remote image with the caller's token, which must wait for
            # it encrypted (it is never kept in clear).
            msg = (
                "enabled_import_methods has glance-download: set [key_manager] token_encryption_key"
            )
            raise ValueError(msg)
        self._check_legacy_stores()
        self._check_reserved_stores()
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

    def _check_reserved_stores(self) -> None:
        """The staging store may be an s3 store, for nodes that share no filesystem (its
        section's s3_store_* options say so). Import work files stay on the worker's own
        disk, so the tasks store is always a file store."""
        if self.store_options(TASKS_STORE).sets_s3_options():
            msg = (
                f"[{TASKS_STORE}] takes no s3_store_* options: import work files stay on the "
                "worker's disk (only the staging store may be an s3 store)"
            )
            raise ValueError(msg)
        staging = self.store_options(STAGING_STORE)
        if not staging.sets_s3_options():
            return
        if staging.filesystem_store_datadir is not None:
            msg = (
                f"[{STAGING_STORE}] sets both filesystem_store_datadir and s3_store_* "
                "options; the staging store is either a file store or an s3 store"
            )
            raise ValueError(msg)
        missing = staging.missing_s3_options()
        if missing:
            msg = f"[{STAGING_STORE}] an s3 staging store needs {', '.join(missing)}"
            raise ValueError(msg)
        # The staging cleanup removes what it finds in the bucket: never an image store's.
        for store_id, kind in self.enabled_backends.items():
            options = self.store_options(store_id)
            same = (options.s3_endpoint(), options.s3_store_bucket) == (
                staging.s3_endpoint(),
                staging.s3_store_bucket,
            )
            if kind == "s3" and same:
                msg = (
                    f"stores {store_id!r} and {STAGING_STORE!r} share the bucket "
                    f"{staging.s3_store_bucket}; the staging store needs its own"
                )
                raise ValueError(msg)

    def reserved_store_type(self, store_id: str) -> str:
        """The driver type of a reserved store: s3 for a staging store configured as one,
        else file."""
        if store_id == STAGING_STORE and self.store_options(store_id).sets_s3_options():
            return "s3"
        return "file"

    def _check_shared_datadirs(self) -> None:
        # Two file stores in one directory would delete each other's data (and the staging
        # cleanup would remove images): refuse to start instead.
        owners: dict[Path, str] = {}
        file_stores = [sid for sid, kind in self.enabled_backends.items() if kind == "file"]
        reserved = [sid for sid in RESERVED_STORES if self.reserved_store_type(sid) == "file"]
        for store_id in (*file_stores, *reserved):
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 -- no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 -- nor secret dirs
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, GlanceIniSource(settings_cls))
