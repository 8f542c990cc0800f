"""Deleting an image's encryption key from Barbican once the image is really gone.

An image carrying `cinder_encryption_key_id` with `cinder_encryption_key_deletion_policy =
on_image_deletion` gets a cleanup row in its delete's own transaction (`record`); any other
policy, or none, keeps the key forever. The key goes only once the image is `deleted`: at once
without delayed delete (the API tries right after the commit), after the scrub with it. A
restore before then voids the row. A failed attempt is retried by the scrubber with exponential
backoff (`next_attempt_at`); nothing here ever fails the image delete itself.

Whose name: a key is deleted only with the rights of the user who deleted the image, as Glance
does it with the user's context, so Barbican decides whether that user may delete that secret.
The call carries, in order of preference, the deleting user's token while it is valid (under
trusted-proxy, the X-Auth-Token the proxy forwards), or a token scoped to a Keystone trust from
that user to the service user (impersonating, in the image owner's project, with the user's
roles) created at delete time for cleanups that outlive the token. Never the service user's own
token: the key id is whatever a member wrote into the image, and Barbican lets an admin (as
service users usually are) delete any project's secret, so the service's token would delete a
secret the image's owner could not. Without a user token or trust the cleanup waits (logged);
the key must then be deleted by someone who may. The user's token is kept only Fernet-encrypted
(`[key_manager] token_encryption_key`) and dropped when the cleanup is done or the token
expires; the trust is deleted after use. Tokens never reach a log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.key_cleanups import PENDING, KeyCleanupRepository
from glimpse.db.tables import Image, ImageKeyCleanup, utcnow
from glimpse.keymanager.barbican import BarbicanClient, BarbicanError
from glimpse.keymanager.keystone import IdentityClient, KeystoneError
from glimpse.keymanager.sealing import TokenSealer
from glimpse.logs import job_context
from glimpse.net.session import session_client

log = logging.getLogger(__name__)

KEY_ID_PROPERTY = "cinder_encryption_key_id"
POLICY_PROPERTY = "cinder_encryption_key_deletion_policy"
DELETE_ON_IMAGE_DELETION = "on_image_deletion"
BATCH = 100
HTTP_TIMEOUT = 30.0
# The attempt made inside the DELETE request: a hung Barbican or Keystone may not hold the
# caller's answer long (the delete has committed; the scrubber retries with HTTP_TIMEOUT).
IN_REQUEST_TIMEOUT = 5.0
# A whole call (connection, request, answer) gets twice its socket timeout: one that simply
# hangs is reported by the socket timeout (which names what hung), one that trickles its
# answer is cut by this.
CALL_DEADLINE_FACTOR = 2
# A token this close to its expiry is not worth sending: it may expire on the way.
TOKEN_MARGIN = timedelta(seconds=30)


class CannotClean(Exception):
    """Configuration, not an outage, stops the cleanup; it is retried all the same."""


@dataclass(frozen=True, slots=True)
class KeyCleanupReport:
    deleted: int
    failed: int
    trusts_created: int
    trusts_deleted: int
    tokens_dropped: int


@dataclass(frozen=True, slots=True)
class _Clients:
    identity: IdentityClient | None
    barbican: BarbicanClient | None


def _naive_utc(moment: datetime) -> datetime:
    """Rows hold naive UTC at second precision, like every other timestamp."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class KeyCleanupService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database
        key = settings.key_manager.token_encryption_key
        self._sealer = TokenSealer(key) if key is not None else None

    # -- at delete time -------------------------------------------------------------------

    async def record(self, session: AsyncSession, ctx: RequestContext, image: Image) -> int | None:
        """In the delete's transaction: the cleanup row's id, or None when the key stays."""
        repo = KeyCleanupRepository(session)
        found = await repo.properties(image.id, (KEY_ID_PROPERTY, POLICY_PROPERTY))
        key_id = found.get(KEY_ID_PROPERTY)
        if not key_id or found.get(POLICY_PROPERTY) != DELETE_ON_IMAGE_DELETION:
            return None
        sealed = expires = None
        if ctx.auth_token and ctx.token_expires_at and self._sealer is not None:
            sealed = self._sealer.seal(ctx.auth_token)
            expires = _naive_utc(ctx.token_expires_at)
        row = await repo.add(
            ImageKeyCleanup(
                image_id=image.id,
                key_id=key_id,
                project_id=image.owner,
                user_id=ctx.user_id,
                roles=",".join(sorted(ctx.roles)),
                user_token=sealed,
                token_expires_at=expires,
                request_id=ctx.request_id,
            )
        )
        return row.id

    async def after_delete(self, ctx: RequestContext, cleanup_id: int, *, gone: bool) -> None:
        """After the delete committed: delete the key now if the image is gone, and make sure
        a later attempt can act in the user's name. Never raises: the delete has succeeded."""
        # The token authenticated this very request: a proxy's forwarded one has no known
        # expiry, and is as fresh as the request.
        fresh = ctx.token_expires_at is None or self._usable(ctx.token_expires_at)
        token = ctx.auth_token if fresh else None
        try:
            async with self._clients(in_request=True) as clients:
                if gone and await self._run_one(clients, cleanup_id, token):
                    return
                if token is not None and ctx.user_id is not None:
                    await self._establish_trust(
                        clients, cleanup_id, token, ctx.user_id, sorted(ctx.roles)
                    )
        except Exception as exc:  # noqa: BLE001 -- anything unexpected is the scrubber's to retry
            # The type only: an exception's text could quote a request and so a token.
            log.warning(
                "key cleanup %s: left for the scrubber after %s", cleanup_id, type(exc).__name__
            )

    # -- the scrubber's pass --------------------------------------------------------------

    async def run(self) -> KeyCleanupReport:
        """One pass: drop expired tokens, delete due keys, create missing trusts, delete the
        trusts of finished cleanups."""
        now = utcnow()
        async with self.db.write() as session:
            dropped = await KeyCleanupRepository(session).drop_expired_tokens(now)
        stale_before = now - timedelta(seconds=self.settings.scrubber.lease_time)
        async with self.db.read() as session:
            repo = KeyCleanupRepository(session)
            due = await repo.due(now, stale_before, BATCH)
            idle = not (
                due or await repo.needing_trust(now, BATCH) or await repo.with_spent_trust(BATCH)
            )
        if idle:
            # No clients: each loads the CA bundle into a TLS context (several MiB) per pass.
            return KeyCleanupReport(0, 0, 0, 0, dropped)
        outcomes: list[bool] = []
        created = removed = 0
        async with self._clients() as clients:
            for cleanup_id in due:  # one at a time: Barbican and Keystone are shared services
                outcomes.append(await self._run_one(clients, cleanup_id, None))  # noqa: PERF401 -- awaited in order
            async with self.db.read() as session:
                repo = KeyCleanupRepository(session)
                untrusted = await repo.needing_trust(now, BATCH)
                spent = await repo.with_spent_trust(BATCH)
            for cleanup_id in untrusted:
                created += await self._trust_from_row(clients, cleanup_id)
            for cleanup_id in spent:
                removed += await self._drop_spent_trust(clients, cleanup_id)
        return KeyCleanupReport(
            outcomes.count(True), outcomes.count(False), created, removed, dropped
        )

    # -- the work -------------------------------------------------------------------------

    @asynccontextmanager
    async def _clients(self, *, in_request: bool = False) -> AsyncIterator[_Clients]:
        """Keystone and Barbican clients with [keystone_authtoken]'s session options. Without
        its `timeout`, a call gets twice its socket timeout; with it, `timeout` in all (and
        never more than IN_REQUEST_TIMEOUT inside a DELETE request)."""
        settings = self.settings
        keystone = settings.keystone_authtoken
        barbican = settings.barbican
        socket_timeout = IN_REQUEST_TIMEOUT if in_request else HTTP_TIMEOUT
        deadline = CALL_DEADLINE_FACTOR * socket_timeout
        if keystone.timeout is not None:
            socket_timeout = deadline = (
                min(keystone.timeout, IN_REQUEST_TIMEOUT) if in_request else keystone.timeout
            )
        async with (
            session_client(keystone, timeout=socket_timeout) as identity_http,
            session_client(
                keystone,
                timeout=socket_timeout,
                verify=barbican.verify_ssl,
                cafile=barbican.verify_ssl_path if barbican.verify_ssl else None,
            ) as barbican_http,
        ):
            identity = None
            if IdentityClient.configured(keystone):
                url = barbican.auth_endpoint or keystone.auth_url or ""
                identity = IdentityClient(keystone, url, identity_http, deadline=deadline)
            client = None
            if settings.key_manager.backend == "barbican" and barbican.barbican_endpoint:
                client = BarbicanClient(barbican, barbican_http, deadline=deadline)
            yield _Clients(identity, client)

    def _usable(self, expires_at: datetime | None) -> bool:
        return expires_at is not None and _naive_utc(expires_at) - utcnow() > TOKEN_MARGIN

    def _kept_token(self, row: ImageKeyCleanup) -> str | None:
        if row.user_token is None or self._sealer is None or not self._usable(row.token_expires_at):
            return None
        return self._sealer.unseal(row.user_token)

    def _backoff(self, attempts: int) -> timedelta:
        options = self.settings.key_manager
        seconds = min(
            options.cleanup_retry_initial * 2 ** min(attempts, 32), options.cleanup_retry_max
        )
        return timedelta(seconds=seconds)

    async def _run_one(self, clients: _Clients, cleanup_id: int, token: str | None) -> bool:
        """Claim one cleanup and delete its key; True once Barbican confirmed."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self.settings.scrubber.lease_time)
        async with self.db.write() as session:
            row = await KeyCleanupRepository(session).claim(cleanup_id, stale_before)
        if row is None:
            return False
        with job_context(row.request_id, row.user_id, row.project_id):
            return await self._delete_claimed(clients, row, token, now)

    async def _delete_claimed(
        self, clients: _Clients, row: ImageKeyCleanup, token: str | None, now: datetime
    ) -> bool:
        cleanup_id = row.id
        assert cleanup_id is not None  # noqa: S101 -- rows from the database have ids
        try:
            used, status = await self._delete_key(clients, row, token or self._kept_token(row))
        except (BarbicanError, KeystoneError, CannotClean) as exc:
            wait = self._backoff(row.attempts)
            log.warning(
                "image %s: encryption key %s not deleted yet (attempt %d, next in %ds): %s",
                row.image_id,
                row.key_id,
                row.attempts + 1,
                int(wait.total_seconds()),
                exc,
            )
            async with self.db.write() as session:
                await KeyCleanupRepository(session).retry_later(cleanup_id, now + wait, str(exc))
            return False
        async with self.db.write() as session:
            await KeyCleanupRepository(session).finish(cleanup_id)
        log.info(
            "image %s: encryption key %s deleted from Barbican (%d)",
            row.image_id,
            row.key_id,
            status,
        )
        if row.trust_id is not None and clients.identity is not None:
            try:
                if await clients.identity.delete_trust(used, row.trust_id):
                    await self._set_trust(cleanup_id, None)
            except KeystoneError as exc:
                log.info("cleanup %s: trust left for the next pass: %s", cleanup_id, exc)
        return True

    async def _delete_key(
        self, clients: _Clients, row: ImageKeyCleanup, token: str | None
    ) -> tuple[str, int]:
        """The token used and Barbican's status."""
        if clients.barbican is None:
            raise CannotClean(
                "no key manager: set [key_manager] backend = barbican and [barbican] "
                "barbican_endpoint"
            )
        if token is None and row.trust_id is not None:
            if clients.identity is None:
                raise CannotClean("a trust but no [keystone_authtoken] credentials to use it")
            token = (await clients.identity.trust_token(row.trust_id)).value
        if token is None:
            # Never the service's own token (see the module's docstring).
            raise CannotClean(
                f"no token or trust of a user of project {row.project_id}: only a user who may "
                "delete the key can have it deleted"
            )
        return token, await clients.barbican.delete_secret(token, row.key_id)

    async def _set_trust(self, cleanup_id: int, trust_id: str | None) -> None:
        async with self.db.write() as session:
            await KeyCleanupRepository(session).set_trust(cleanup_id, trust_id)

    async def _establish_trust(
        self, clients: _Clients, cleanup_id: int, token: str, user_id: str, roles: list[str]
    ) -> bool:
        """Create the trust a later attempt will use; True when one was recorded."""
        async with self.db.read() as session:
            row = await KeyCleanupRepository(session).get(cleanup_id)
        if row is None or row.status != PENDING or row.trust_id is not None:
            return False
        if clients.identity is None or row.project_id is None:
            return False
        try:
            trust_id = await clients.identity.create_trust(token, user_id, row.project_id, roles)
        except KeystoneError as exc:
            log.warning("cleanup %s: no trust yet: %s", cleanup_id, exc)
            return False
        async with self.db.write() as session:
            repo = KeyCleanupRepository(session)
            current = await repo.get(cleanup_id)
            recorded = current is not None and current.trust_id is None
            if recorded:
                await repo.set_trust(cleanup_id, trust_id)
        if not recorded:  # another process recorded its own meanwhile: this one is not needed
            await clients.identity.delete_trust(token, trust_id)
        return recorded

    async def _trust_from_row(self, clients: _Clients, cleanup_id: int) -> int:
        async with self.db.read() as session:
            row = await KeyCleanupRepository(session).get(cleanup_id)
        token = self._kept_token(row) if row is not None else None
        if row is None or token is None or row.user_id is None:
            return 0
        roles = [role for role in row.roles.split(",") if role]
        return int(await self._establish_trust(clients, cleanup_id, token, row.user_id, roles))

    async def _drop_spent_trust(self, clients: _Clients, cleanup_id: int) -> int:
        """Delete the trust of a finished or voided cleanup: with a token scoped to the trust
        itself (an impersonating trustee acts as the trustor, who may delete it), else as the
        service user (Keystone lets an admin delete any trust)."""
        async with self.db.read() as session:
            row = await KeyCleanupRepository(session).get(cleanup_id)
        if row is None or row.trust_id is None or clients.identity is None:
            return 0
        try:
            try:
                token = (await clients.identity.trust_token(row.trust_id)).value
            except KeystoneError:  # the trust is gone already, or unusable: ask as the service
                token = (await clients.identity.service_token()).value
            gone = await clients.identity.delete_trust(token, row.trust_id)
        except KeystoneError as exc:
            log.info("cleanup %s: trust not deleted yet: %s", cleanup_id, exc)
            return 0
        if gone:
            await self._set_trust(cleanup_id, None)
        return int(gone)
