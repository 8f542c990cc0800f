"""Sends job messages (ids only) to the broker, after the transaction that made the work commits.

A failed send is logged and reported, never raised: the task row is the outbox, so a task left
pending is sent again by the scrubber's `requeue_pending` job.

An API process warms its publisher as it starts (`warm`): the first send otherwise builds the
Celery application, its message machinery and its broker connection on the request's path, a
few tenths of a second that every import made first on a fresh process would wait for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Final

from glimpse.config import Settings
from glimpse.jobs import names
from glimpse.jobs.broker import AMQP_SCHEMES, celery_config

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# Bounded retries: a request waits a few seconds at most for a broker that is down.
RETRY_POLICY: Final = {"max_retries": 2, "interval_start": 0, "interval_step": 1, "interval_max": 2}
# Seconds one connect or one reply may take. Broker clients may wait forever by default, so a
# broker that accepts connections but never answers (hung, or its host unreachable) would hold
# the import request without end.
SEND_TIMEOUT: Final = 2.0


class JobPublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None
        # The warm-up builds the application in a thread while a request may send.
        self._building = threading.Lock()
        self._warming: asyncio.Future[None] | None = None

    def _celery(self) -> Celery:
        if self._app is not None:
            return self._app
        with self._building:
            if self._app is None:
                self._app = self._build()
            return self._app

    def _build(self) -> Celery:
        # Imported on first use (a send, or the warm-up): the scrubber sends only when a task
        # is stalled.
        from celery import Celery  # noqa: PLC0415 -- as said above

        app = Celery("glimpse-publisher")
        config = celery_config(self.settings)
        broker_url = self.settings.celery.broker_url
        if broker_url.startswith(("redis://", "rediss://")):
            config["broker_transport_options"] = {
                **config.get("broker_transport_options", {}),
                "socket_connect_timeout": SEND_TIMEOUT,
                "socket_timeout": SEND_TIMEOUT,
            }
        elif broker_url.startswith(AMQP_SCHEMES):
            config["broker_connection_timeout"] = SEND_TIMEOUT
            config["broker_transport_options"] = {
                "read_timeout": SEND_TIMEOUT,
                "write_timeout": SEND_TIMEOUT,
            }
        app.conf.update(config)
        return app

    def _send(self, name: str, task_id: str) -> None:
        # Nothing waits for a result (the task row is the outcome): ignore_result also keeps
        # the send from subscribing to the result backend, another blocking call.
        self._celery().send_task(
            name, args=[task_id], retry=True, retry_policy=RETRY_POLICY, ignore_result=True
        )

    async def publish_import(self, task_id: str) -> bool:
        """Send the import job of `task_id`; False (logged) when the broker refused it."""
        try:
            # kombu is blocking; a thread keeps the event loop serving other requests.
            await asyncio.to_thread(self._send, names.IMPORT, task_id)
        except Exception:
            log.warning(
                "could not send import task %s; it stays pending until requeued",
                task_id,
                exc_info=True,
            )
            return False
        return True

    def _warm(self) -> None:
        app = self._celery()
        # What a send builds on first use: the queues, the message protocol and its sender,
        # and the result backend (a send returns a result handle, ignored or not).
        amqp = app.amqp
        queue = amqp.queues[app.conf.task_default_queue]
        amqp.create_task_message(names.IMPORT, names.IMPORT, args=["warm-up"])
        _ = amqp.send_task_message, app.backend
        # A producer of the pool, connected and with the queue declared, goes back to the pool
        # for the first send to take.
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, timeout=SEND_TIMEOUT)
            producer.maybe_declare(queue)

    async def warm(self) -> bool:
        """Build the sender and connect it to the broker now, off any request's path; False
        (logged) when the broker could not be reached: the next send connects then."""
        loop = asyncio.get_running_loop()
        self._warming = loop.run_in_executor(None, self._warm)
        try:
            # Shielded: a cancelled warm-up lets its thread end (aclose waits for it).
            await asyncio.shield(self._warming)
        except Exception as exc:  # noqa: BLE001 -- whatever it was, a send tries again
            log.warning("job publisher: broker not reachable at start (%s); sends connect", exc)
            return False
        log.info("job publisher: connected to the broker")
        return True

    def _connect(self) -> None:
        with self._celery().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=SEND_TIMEOUT)

    async def reachable(self) -> None:
        """Return once the broker accepted a connection; raise what the attempt raised."""
        await asyncio.to_thread(self._connect)

    async def aclose(self) -> None:
        if self._warming is not None:
            await asyncio.wait([self._warming])  # its thread uses the application
        if self._app is not None:
            await asyncio.to_thread(self._app.close)
            self._app = None
