"""Keystone's unified limits (`[DEFAULT] use_keystone_limits`), in oslo.limit's flat model:
a project's limit on a resource is its project limit, else the registered limit of the
resource for this service's endpoint (service and region), else 0; -1 is unlimited.

Limits are read from Keystone's /v3/limits and /v3/registered_limits with the `[oslo_limit]`
credentials and kept per project for `[oslo_limit] cache_time` seconds in each process, so a
limit changed in Keystone is obeyed within that time. They are read before the transaction
that checks them (no transaction waits on Keystone); the check itself runs under the owner's
lock in the transaction that records what it admits (see LimitUsageRepository), so parallel
requests on any node cannot together pass a limit. Keystone unreachable or refusing: the
request that needs a limit is refused (LimitsUnavailable, 503), never let through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.config import Settings
from glimpse.config.limit_options import OsloLimitOptions
from glimpse.db.repositories.limit_usage import LimitUsage, LimitUsageRepository
from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.tables import utcnow
from glimpse.domain.errors import IdentityUnavailable, LimitExceeded
from glimpse.limits import StorageQuota
from glimpse.net.deadline import DeadlineExceeded, within
from glimpse.net.session import session_client

log = logging.getLogger(__name__)

MiB: Final = 1024 * 1024
UNLIMITED: Final = -1
IMAGE_SIZE_TOTAL: Final = "image_size_total"
IMAGE_STAGE_TOTAL: Final = "image_stage_total"
IMAGE_COUNT_TOTAL: Final = "image_count_total"
IMAGE_COUNT_UPLOADING: Final = "image_count_uploading"
RESOURCES: Final = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL, IMAGE_COUNT_TOTAL, IMAGE_COUNT_UPLOADING)
_DEADLINE: Final = 30.0  # seconds for one read of a project's limits, all calls included

_OVER_LIMIT_PREFIX: Final = (
    "The request returned a 413 Request Entity Too Large. This generally means that rate "
    "limiting or a quota threshold was breached.\n\nThe response body:\n"
)


class LimitsUnavailable(IdentityUnavailable):
    """Keystone's limits could not be read: the request needing them is refused (503)."""


def in_units(usage: LimitUsage) -> dict[str, int]:
    """A project's usage in each resource's unit (sizes in whole MiB, as Glance counts them)."""
    return {
        IMAGE_SIZE_TOTAL: usage.stored_bytes // MiB,
        IMAGE_STAGE_TOTAL: usage.staged_bytes // MiB,
        IMAGE_COUNT_TOTAL: usage.image_count,
        IMAGE_COUNT_UPLOADING: usage.uploading_count,
    }


def mib_of(size: int | None) -> int:
    return 0 if size is None else size // MiB


def over_limit(project_id: str | None, over: list[tuple[str, int, int, int]]) -> LimitExceeded:
    """The refusal of (resource, limit, usage, delta) overruns: 413, in oslo.limit's words
    wrapped in Glance's."""
    infos = ", ".join(
        f"Resource {name} is over limit of {limit} due to current usage {usage} and delta {delta}"
        for name, limit, usage, delta in over
    )
    return LimitExceeded(f"{_OVER_LIMIT_PREFIX}Project {project_id} is over a limit for [{infos}]")


def enforce(
    project_id: str | None,
    limits: Mapping[str, int],
    usage: Mapping[str, int],
    deltas: Mapping[str, int],
) -> None:
    """LimitExceeded if usage plus delta passes the limit of any resource in `deltas`; a
    delta of 0 refuses only a project already over."""
    over = [
        (name, limits[name], usage[name], deltas[name])
        for name in sorted(deltas)
        if limits[name] != UNLIMITED and usage[name] + deltas[name] > limits[name]
    ]
    if over:
        raise over_limit(project_id, over)


async def check_in(
    session: AsyncSession,
    project_id: str | None,
    limits: Mapping[str, int] | None,
    deltas: Mapping[str, int],
    *,
    besides: str | None = None,
) -> None:
    """Within the caller's write transaction: take the project's lock and enforce `deltas`
    on its current usage (image `besides`'s data left out: the deltas hold it), so what the
    transaction records is checked with nothing racing it. A no-op when `limits` is None
    (use_keystone_limits off)."""
    if limits is None:
        return
    await ReservationRepository(session).lock_owner(project_id)
    usage = await LimitUsageRepository(session).usage(project_id, utcnow(), besides=besides)
    enforce(project_id, limits, in_units(usage), deltas)


def size_quota(
    quota: StorageQuota, project_id: str | None, limits: Mapping[str, int] | None
) -> StorageQuota:
    """`quota` holding data to the project's image_size_total, byte for byte as it streams
    (unchanged when `limits` is None)."""
    if limits is None:
        return quota
    limit = limits[IMAGE_SIZE_TOTAL]

    def refusal(used: int, need: int) -> str:
        over = (IMAGE_SIZE_TOTAL, limit, used // MiB, -(-need // MiB))
        return str(over_limit(project_id, [over]))

    return quota.bound(None if limit == UNLIMITED else limit * MiB, refusal)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    service_id: str
    region_id: str | None


class UnifiedLimits:
    """One process's reader of the limits in Keystone, with its cache (see for_settings)."""

    def __init__(self, options: OsloLimitOptions) -> None:
        self.options = options
        self._endpoint: _Endpoint | None = None
        self._cached: dict[str, tuple[float, dict[str, int]]] = {}

    async def limits(self, project_id: str | None) -> dict[str, int]:
        """Every resource's limit for the project (cached for cache_time seconds)."""
        key = project_id or ""
        hit = self._cached.get(key)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
        try:
            read = await within(_DEADLINE, "Keystone limits", self._read(project_id))
        except (httpx.HTTPError, DeadlineExceeded, KeyError, TypeError, ValueError) as exc:
            # Our own messages and httpx's name no secret: tokens travel in headers only.
            log.warning("Keystone's unified limits could not be read: %r", exc)
            raise LimitsUnavailable(
                "The project's limits could not be read from the Identity service."
            ) from exc
        self._cached[key] = (time.monotonic() + self.options.cache_time, read)
        return read

    async def _read(self, project_id: str | None) -> dict[str, int]:
        timeout = self.options.timeout or _DEADLINE
        async with session_client(self.options, timeout=timeout) as http:
            url = (self.options.auth_url or "").rstrip("/")
            url = url if url.endswith("/v3") else f"{url}/v3"
            token = await self._token(http, url)
            api = _Api(http, url, token)
            if self._endpoint is None:
                self._endpoint = await self._find_endpoint(api)
            where: dict[str, str] = {"service_id": self._endpoint.service_id}
            if self._endpoint.region_id is not None:
                where["region_id"] = self._endpoint.region_id
            registered = await api.get("/registered_limits", where)
            limits = dict.fromkeys(RESOURCES, 0)
            for entry in registered["registered_limits"]:
                if entry["resource_name"] in limits:
                    limits[entry["resource_name"]] = int(entry["default_limit"])
            if project_id:
                own = await api.get("/limits", {**where, "project_id": project_id})
                for entry in own["limits"]:
                    if entry["resource_name"] in limits:
                        limits[entry["resource_name"]] = int(entry["resource_limit"])
            return limits

    async def _token(self, http: httpx.AsyncClient, url: str) -> str:
        body = {"auth": {"identity": self._identity(), **self._scope()}}
        response = await http.post(f"{url}/auth/tokens", json=body, params={"nocatalog": "1"})
        if response.status_code != HTTPStatus.CREATED:
            msg = f"authentication answered {response.status_code}"
            raise ValueError(msg)
        return response.headers["X-Subject-Token"]

    def _identity(self) -> dict[str, Any]:
        o = self.options
        user: dict[str, Any] = {"password": o.password.get_secret_value() if o.password else ""}
        if o.user_id:
            user["id"] = o.user_id
        else:
            user["name"] = o.username
            user["domain"] = (
                {"id": o.user_domain_id}
                if o.user_domain_id
                else {"name": o.user_domain_name or "Default"}
            )
        return {"methods": ["password"], "password": {"user": user}}

    def _scope(self) -> dict[str, Any]:
        o = self.options
        if o.system_scope:
            return {"scope": {"system": {o.system_scope: True}}}
        if o.project_id:
            return {"scope": {"project": {"id": o.project_id}}}
        if o.project_name:
            domain = (
                {"id": o.project_domain_id}
                if o.project_domain_id
                else {"name": o.project_domain_name or "Default"}
            )
            return {"scope": {"project": {"name": o.project_name, "domain": domain}}}
        if o.domain_id or o.domain_name:
            named = {"id": o.domain_id} if o.domain_id else {"name": o.domain_name}
            return {"scope": {"domain": named}}
        return {}

    async def _find_endpoint(self, api: _Api) -> _Endpoint:
        o = self.options
        if o.endpoint_id:
            found = (await api.get(f"/endpoints/{o.endpoint_id}", {}))["endpoint"]
            return _Endpoint(str(found["service_id"]), found.get("region_id"))
        query = {
            key: value
            for key, value in (("type", o.endpoint_service_type), ("name", o.endpoint_service_name))
            if value
        }
        services = (await api.get("/services", query))["services"]
        if len(services) != 1:
            msg = f"{len(services)} services match [oslo_limit]"
            raise ValueError(msg)
        where = {
            "service_id": services[0]["id"],
            "interface": o.endpoint_interface.removesuffix("URL"),
        }
        region_id = None
        if o.endpoint_region_name:
            region_id = str(
                (await api.get(f"/regions/{o.endpoint_region_name}", {}))["region"]["id"]
            )
            where["region_id"] = region_id
        endpoints = (await api.get("/endpoints", where))["endpoints"]
        if len(endpoints) != 1:
            msg = f"{len(endpoints)} endpoints match [oslo_limit]"
            raise ValueError(msg)
        return _Endpoint(str(services[0]["id"]), endpoints[0].get("region_id"))


@dataclass(frozen=True, slots=True)
class _Api:
    http: httpx.AsyncClient
    url: str
    token: str

    async def get(self, path: str, params: Mapping[str, str]) -> Any:  # noqa: ANN401 -- JSON
        response = await self.http.get(
            f"{self.url}{path}", params=dict(params), headers={"X-Auth-Token": self.token}
        )
        if response.status_code != HTTPStatus.OK:
            msg = f"GET {path} answered {response.status_code}"
            raise ValueError(msg)
        return response.json()


_READERS: dict[int, tuple[Settings, UnifiedLimits]] = {}


def for_settings(settings: Settings) -> UnifiedLimits | None:
    """The process's reader for these settings (one cache however many services use them);
    None unless use_keystone_limits is on."""
    if not settings.use_keystone_limits:
        return None
    entry = _READERS.get(id(settings))
    if entry is None:
        # The settings are kept with their reader, so their id is never reused meanwhile.
        entry = _READERS[id(settings)] = (settings, UnifiedLimits(settings.oslo_limit))
    return entry[1]


async def read_limits(settings: Settings, project_id: str | None) -> dict[str, int] | None:
    """The project's limits, or None when use_keystone_limits is off (LimitsUnavailable when
    Keystone does not give them). Read before the transaction that checks them."""
    reader = for_settings(settings)
    return None if reader is None else await reader.limits(project_id)
