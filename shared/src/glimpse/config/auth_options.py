"""Identity and secrets: `[oslo_policy]`, `[keystone_authtoken]`, `[key_manager]` and
`[barbican]`."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from glimpse.config.notation import GlanceList
from glimpse.config.session import SessionOptions
from glimpse.config.sources import CURRENT_FILE

FERNET_KEY_BYTES = 32

log = logging.getLogger(__name__)


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
            "for a pending key cleanup, and the importing user's token a glance-download task, "
            "or the import of a signed image (the worker reads its certificate with it), waits "
            "with (required by both). Without it no token is kept: the cleanup relies on a "
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
