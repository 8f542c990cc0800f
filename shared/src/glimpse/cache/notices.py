"""Cache notices: one API node tells every other node, through the broker, to look at its cache.

Each node's cache is its own (the cache API acts on the node that gets the request, as Glance's
does), but deleting or deactivating an image removes its cache rows of every node in the same
transaction; a notice only says "look now" (at that image), so the other nodes drop their files
within moments instead of at their next maintenance pass. The database stays the truth: a lost
notice (broker down, a node reconnecting) only delays the work until that pass.

Notices travel on a kombu fanout exchange, which both production brokers carry: Redis as
PUBLISH/SUBSCRIBE on `/<db>.<exchange>`, RabbitMQ as a transient exchange that gives each
listening process its own exclusive queue. The embedded filesystem:// broker serves one machine,
whose processes share one cache directory and queue: there, notices are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Producer

from glimpse.config import Settings
from glimpse.jobs.broker import AMQP_SCHEMES

log = logging.getLogger(__name__)

REDIS_SCHEMES: Final = ("redis://", "rediss://")
# Seconds one connect or one send may take: a request never waits long for a broker that is down.
_SEND_TIMEOUT: Final = 2.0
_SEND_RETRY: Final = {"max_retries": 1, "interval_start": 0, "interval_step": 1, "interval_max": 1}
# How often the listening thread looks up from the broker (to stop, or to send a heartbeat).
_POLL: Final = 1.0
_HEARTBEAT: Final = 10  # seconds (RabbitMQ): a broker that went away is noticed within ~2x this
_RECONNECT_MAX: Final = 30.0  # seconds between attempts while the broker is away
_QUIET: Final = 10.0  # seconds without sending after a send failed

# What a node does with a notice: the image id, or None for "look at everything".
Reaction = Callable[[str | None], Awaitable[None]]


class CacheNotices:
    def __init__(self, settings: Settings, node_url: str) -> None:
        self.url = settings.celery.broker_url
        self.node_url = node_url
        self.enabled = self.url.startswith(REDIS_SCHEMES + AMQP_SCHEMES)
        # Not auto-deleted: a publisher declares it once per connection, and RabbitMQ refuses a
        # publish to an exchange that vanished when its last listener went.
        self.exchange = Exchange(
            settings.celery.cache_notice_exchange,
            type="fanout",
            durable=False,
            delivery_mode="transient",
        )
        self.received = 0  # notices from other nodes taken from the broker by this process
        self.listening = threading.Event()  # set while subscribed (notices sent now arrive)
        self._lock = threading.Lock()  # one send at a time on the shared connection
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._quiet_until = 0.0  # monotonic time before which no notice is sent (broker down)

    def _connect(self, *, heartbeat: int = 0) -> Connection:
        options: dict[str, Any]
        if self.url.startswith(REDIS_SCHEMES):
            # Named for CLIENT LIST: which deployment's notices a connection carries.
            name = re.sub(r"[^\w.:-]", "_", f"glimpse-cache-notices:{self.exchange.name}")
            options = {"socket_connect_timeout": _SEND_TIMEOUT, "client_name": name}
        else:
            options = {"read_timeout": _SEND_TIMEOUT, "write_timeout": _SEND_TIMEOUT}
        return Connection(
            self.url,
            connect_timeout=_SEND_TIMEOUT,
            heartbeat=heartbeat,
            transport_options=options,
        )

    # -- sending ----------------------------------------------------------------------------------

    def _send(self, body: dict[str, Any]) -> None:
        with self._lock:
            if self._producer is None:
                self._connection = self._connect()
                self._producer = Producer(self._connection, serializer="json")
            self._producer.publish(
                body,
                exchange=self.exchange,
                routing_key="",
                declare=[self.exchange],
                retry=True,
                retry_policy=_SEND_RETRY,
                timeout=_SEND_TIMEOUT,
            )

    async def announce(self, image_id: str | None) -> None:
        """Tell the other nodes to look at `image_id` (None: at everything) now. Returns at
        once and never raises: the request does not wait for the broker, and a notice that is
        not sent leaves the work to the other nodes' next pass."""
        if not self.enabled or time.monotonic() < self._quiet_until:
            return
        body = {"node": self.node_url, "image_id": image_id}
        task = asyncio.create_task(self._announcing(body), name="cache-notice-send")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _announcing(self, body: dict[str, Any]) -> None:
        try:
            # kombu is blocking; a thread keeps the event loop serving other requests.
            await asyncio.to_thread(self._send, body)
        except Exception:
            # Not again for a while: each attempt would hold a thread for the send timeouts.
            self._quiet_until = time.monotonic() + _QUIET
            log.warning(
                "could not send the cache notice for %s; other nodes act at their next pass "
                "(no notices for %.0fs)",
                body["image_id"] or "every image",
                _QUIET,
                exc_info=True,
            )
            await asyncio.to_thread(self._close_sender)

    def _close_sender(self) -> None:
        with self._lock:
            connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.release()

    async def aclose(self) -> None:
        """Let notices being sent go (each is bounded by the send timeouts), then disconnect."""
        if self._sending:
            await asyncio.wait(list(self._sending))
        await asyncio.to_thread(self._close_sender)

    # -- listening --------------------------------------------------------------------------------

    def _listen(self, on_notice: Callable[[str | None], None], stop: threading.Event) -> None:
        """The listening thread: consume notices until `stop`, reconnecting while the broker is
        away; after a reconnection, look at everything (notices may have been missed)."""
        delay = 1.0
        connected_before = False
        while not stop.is_set():
            try:
                with self._connect(heartbeat=_HEARTBEAT) as connection:
                    connection.ensure_connection(max_retries=1, timeout=_SEND_TIMEOUT)
                    with connection.Consumer(
                        [self._queue()],
                        callbacks=[lambda body, _message: self._taken(body, on_notice)],
                        accept=["json"],
                        no_ack=True,
                    ):
                        catch_up = None
                        if connected_before:
                            log.info("cache notices: broker reconnected")
                            catch_up = on_notice
                        connected_before = True
                        delay = 1.0
                        try:
                            self._drain(connection, stop, catch_up)
                        finally:
                            self.listening.clear()
            except Exception as exc:  # noqa: BLE001 -- any broker failure: retry later
                log.warning("cache notices: broker unavailable (%s); retrying in %.0fs", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, _RECONNECT_MAX)

    def _queue(self) -> Queue:
        # This process's own queue on the fanout exchange, gone when it disconnects.
        return Queue(
            f"{self.exchange.name}.{uuid.uuid4().hex}",
            exchange=self.exchange,
            routing_key="",
            durable=False,
            exclusive=True,
            auto_delete=True,
        )

    def _drain(
        self,
        connection: Connection,
        stop: threading.Event,
        catch_up: Callable[[str | None], None] | None,
    ) -> None:
        """Take notices until `stop`; once subscribed, `catch_up` (if given) looks at
        everything, for the notices sent while this process was not listening."""
        while not stop.is_set():
            try:
                connection.drain_events(timeout=_POLL)
            except TimeoutError:
                connection.heartbeat_check()
            # Redis subscribes in the first drain, not when the consumer is made.
            if not self.listening.is_set():
                self.listening.set()
                if catch_up is not None:
                    catch_up(None)

    def _taken(self, body: object, on_notice: Callable[[str | None], None]) -> None:
        if not isinstance(body, dict) or body.get("node") == self.node_url:
            return  # this node's own notice: the process that sent it has acted
        image_id = body.get("image_id")
        if image_id is not None and not isinstance(image_id, str):
            return
        self.received += 1
        on_notice(image_id)

    @asynccontextmanager
    async def following(self, react: Reaction, grace: float) -> AsyncIterator[None]:
        """While in the block, every notice from another node runs `react` on this loop. At
        the end, reactions in progress get `grace` seconds to finish and are then cancelled."""
        if not self.enabled:
            yield
            return
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def start(image_id: str | None) -> None:
            task = loop.create_task(_reacting(react, image_id), name="cache-notice")
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def on_notice(image_id: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to do
                loop.call_soon_threadsafe(start, image_id)

        stop = threading.Event()
        thread = threading.Thread(
            target=self._listen, args=(on_notice, stop), name="cache-notices", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            # The thread looks up every _POLL seconds; a connect in progress ends in its timeout.
            await asyncio.to_thread(thread.join, _POLL + 2 * _SEND_TIMEOUT + 1)
            if thread.is_alive():
                log.warning("cache notices: the listening thread did not stop")
            pending = list(tasks)
            if pending:
                await asyncio.wait(pending, timeout=grace)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _reacting(react: Reaction, image_id: str | None) -> None:
    try:
        await react(image_id)
    except Exception:
        log.exception("cache notice for %s: the cache could not act on it", image_id or "all")
