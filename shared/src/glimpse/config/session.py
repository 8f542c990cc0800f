"""keystoneauth's session options, as operators set them in `[keystone_authtoken]`: they apply
to every call to Keystone and to the Barbican clients built from that section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationInfo, field_validator


class SessionOptions(BaseModel):
    timeout: float | None = Field(
        None,
        gt=0,
        description=(
            "Seconds each call to Keystone (token validation, the service's own "
            "authentication, key-cleanup trusts) and to Barbican may take in all; unset: "
            "http_request_timeout for token validation, 30 s for key cleanups."
        ),
    )
    cafile: Path | None = Field(
        None, description="CA bundle that signs Keystone's certificate (PEM)."
    )
    certfile: Path | None = Field(
        None,
        description=(
            "Client certificate (PEM) presented to Keystone and Barbican when they ask for one."
        ),
    )
    keyfile: Path | None = Field(
        None, description="Private key of certfile, when certfile does not hold it."
    )
    insecure: bool = Field(
        default=False, description="Skip verification of Keystone's TLS certificate."
    )
    collect_timing: bool = Field(
        default=False,
        description=(
            "Time each call to Keystone and Barbican; one INFO line per call gives method, "
            "URL, status and seconds to the answer's headers."
        ),
    )
    split_loggers: bool = Field(
        default=False,
        description=(
            "Log each call's request, answer and request id (DEBUG) to the loggers "
            "glimpse.session.request, .response and .request-id instead of glimpse.session. "
            "Bodies and token headers are never logged."
        ),
    )

    @field_validator("keyfile")
    @classmethod
    def _key_needs_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("certfile") is None:
            msg = "keyfile is set without certfile"
            raise ValueError(msg)
        return value
