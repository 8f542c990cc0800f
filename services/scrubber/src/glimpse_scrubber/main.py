"""The scrubber's modes: one pass, the daemon (a pass every wakeup_time), --restore.
The command line is glimpse_scrubber.cli."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from glimpse.config import Settings
from glimpse_scrubber.health import beat
from glimpse_scrubber.jobs import JOBS, ScrubberRuntime

if TYPE_CHECKING:
    from glimpse_scrubber import observe

log = logging.getLogger("glimpse_scrubber")


async def run_pass(runtime: ScrubberRuntime) -> None:
    for job in JOBS:
        log.debug("running %s", job.__name__)
        await job(runtime)


async def _daemon(runtime: ScrubberRuntime) -> None:
    settings = runtime.settings
    figures = _served_figures(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    while not stop.is_set():
        try:
            await run_pass(runtime)
        except Exception:
            # Pike: in daemon mode a failed pass is logged at CRITICAL and the daemon lives on.
            log.critical("scrubber pass failed", exc_info=True)
        else:
            _record_pass(settings)
            if figures is not None:
                await _measure(runtime, figures)
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.scrubber.wakeup_time)
        except TimeoutError:
            continue
    log.info("scrubber stopped")


def _served_figures(runtime: ScrubberRuntime) -> observe.Figures | None:
    """The figures the metrics server answers with, once it is started; None without one
    (`[metrics] port` 0, the default): then neither prometheus_client is imported nor the
    figures are measured."""
    options = runtime.settings.metrics
    if not (options.enabled and options.port):
        return None
    from glimpse_scrubber import observe  # noqa: PLC0415 -- only where served

    figures = observe.Figures()
    observe.serve(runtime, figures)
    return figures


async def _measure(runtime: ScrubberRuntime, figures: observe.Figures) -> None:
    from glimpse_scrubber import observe  # noqa: PLC0415 -- imported by _served_figures

    try:
        figures.set(await observe.measure(runtime))
    except Exception:
        log.warning("cannot measure what waits for the scrubber", exc_info=True)


def _record_pass(settings: Settings) -> None:
    try:
        beat(settings.scrubber.heartbeat_file)
    except OSError as exc:
        log.warning("cannot touch %s: %s", settings.scrubber.heartbeat_file, exc.strerror)


async def _restore(runtime: ScrubberRuntime, image_id: str) -> int:
    refusal = await runtime.deletion.restore(image_id)
    if refusal is not None:
        log.error("cannot restore: %s", refusal)
        return 1
    log.info("image %s restored to active", image_id)
    return 0


async def run(settings: Settings, *, daemon: bool, restore: str | None) -> int:
    runtime = ScrubberRuntime.build(settings)
    try:
        if restore is not None:
            return await _restore(runtime, restore)
        if daemon:
            await _daemon(runtime)
            return 0
        try:
            await run_pass(runtime)
        except Exception:
            log.critical("scrubber pass failed", exc_info=True)
            return 1
        return 0
    finally:
        await runtime.aclose()
