"""Store options: `[glance_store]` and the `[<store id>]` section of each store named by
enabled_backends (glance_store's option names and defaults)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from glimpse.config.notation import GlanceDict, GlanceList


def store_types() -> list[str]:
    """The store types this installation has (the `glimpse.stores` entry points)."""
    return sorted(ep.name for ep in entry_points(group="glimpse.stores"))


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

    def sets_s3_options(self) -> bool:
        """The section configures an s3 store (the reserved staging store's only sign that
        it is one: reserved stores are named by no enabled_backends)."""
        return any(name.startswith("s3_store_") for name in self.model_fields_set)

    def missing_s3_options(self) -> list[str]:
        """The options an s3 store cannot do without that this section leaves unset."""
        required = {
            "s3_store_host": self.s3_store_host,
            "s3_store_bucket": self.s3_store_bucket,
            "s3_store_access_key": self.s3_store_access_key,
            "s3_store_secret_key": self.s3_store_secret_key,
        }
        return [name for name, value in required.items() if not value]

    def s3_endpoint(self) -> str | None:
        """s3_store_host as a URL (http:// when it names no scheme)."""
        if not self.s3_store_host:
            return None
        host = self.s3_store_host.strip().rstrip("/")
        return host if "://" in host else f"http://{host}"

    @field_validator("http_proxy_information")
    @classmethod
    def _proxies(cls, value: dict[str, str]) -> dict[str, str]:
        empty = sorted(scheme for scheme, proxy in value.items() if not proxy)
        if empty:
            msg = f"no proxy given for {empty}; expected scheme:proxy pairs"
            raise ValueError(msg)
        return value
