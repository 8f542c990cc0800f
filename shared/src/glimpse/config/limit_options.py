"""`[oslo_limit]`: where Keystone's unified limits are read when `[DEFAULT] use_keystone_limits`
is on, with oslo.limit's option names (the endpoint whose limits apply, keystoneauth's password
credentials and session options)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from glimpse.config.session import SessionOptions


class OsloLimitOptions(SessionOptions):
    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds each call that reads limits from Keystone may take; unset: 30.",
    )
    endpoint_id: str | None = Field(
        None,
        description=(
            "Id of this service's endpoint in Keystone: limits registered for its service and "
            "region apply. Unset: found by endpoint_service_name or endpoint_service_type "
            "(with endpoint_region_name and endpoint_interface)."
        ),
    )
    endpoint_service_name: str | None = Field(
        None, description="Service name for endpoint discovery (e.g. glance)."
    )
    endpoint_service_type: str | None = Field(
        None, description="Service type for endpoint discovery (e.g. image)."
    )
    endpoint_region_name: str | None = Field(
        None, description="Region to which the endpoint belongs."
    )
    endpoint_interface: Literal[
        "public", "publicURL", "internal", "internalURL", "admin", "adminURL"
    ] = Field("public", description="The interface for endpoint discovery.")
    auth_type: Literal["password", "v3password"] | None = Field(
        None, description="How Glimpse authenticates to read limits (password only)."
    )
    auth_url: str | None = Field(
        None, description="Keystone's Identity API, e.g. http://keystone:5000/v3."
    )
    username: str | None = Field(None, description="User that reads the limits.")
    password: SecretStr | None = Field(None, description="That user's password.")
    user_id: str | None = Field(None, description="The user's id (instead of username).")
    user_domain_id: str | None = Field(None, description="Domain id of username.")
    user_domain_name: str | None = Field(None, description="Domain name of username.")
    system_scope: str | None = Field(
        None, description="`all`: a system-scoped token (as Glance's documentation advises)."
    )
    project_id: str | None = Field(None, description="Project to scope the token to.")
    project_name: str | None = Field(None, description="Project to scope the token to.")
    project_domain_id: str | None = Field(None, description="Domain id of project_name.")
    project_domain_name: str | None = Field(None, description="Domain name of project_name.")
    domain_id: str | None = Field(None, description="Domain to scope the token to.")
    domain_name: str | None = Field(None, description="Domain to scope the token to.")
    cache_time: float = Field(
        60.0,
        ge=0,
        description=(
            "Glimpse: seconds each process reuses the limits it read from Keystone (per "
            "project); a limit changed in Keystone is obeyed within this time. 0: read on "
            "every check."
        ),
    )

    def missing(self) -> list[str]:
        """What use_keystone_limits needs and this section lacks."""
        missing = [name for name in ("auth_url", "password") if not getattr(self, name)]
        if not (self.username or self.user_id):
            missing.append("username")
        if not (self.endpoint_id or self.endpoint_service_name or self.endpoint_service_type):
            missing.append("endpoint_id (or endpoint_service_name)")
        return missing
