"""`image_conversion`: the staged image converted with qemu-img to `[image_conversion]
output_format`, as Glance does it.

Before qemu-img sees the file at all, the format inspectors (glimpse.formats) read its headers
and run their safety checks: a qcow2 with a backing file or an external data file, a VMDK whose
extents are other files or whose create-type is not monolithicSparse or streamOptimized, an
invalid MBR, data showing two formats at once, and the like are refused there, because `qemu-img
info` and `convert` would open the host files such headers name (CVE-2024-32498). qemu-img then
never guesses a format: it is told the one the image declares, once the inspection agrees with
the declaration, and its own report is checked again. An ISO stays an ISO when declared one and
is refused otherwise.

qemu-img runs as a child process under resource limits set between fork and exec (RLIMIT_AS and
RLIMIT_CPU, as oslo.concurrency's prlimit does): `info` with Glance's limits, `convert` with
`[image_conversion]`'s, and each with a wall-clock limit past which it is killed. It is killed
too if the job is cancelled.

The output counts against the owner's user_storage_quota before it is written (see
glimpse.services.quota): a raw output, as large as the virtual size, is reserved whole before
qemu-img starts; another is reserved as the file grows, and qemu-img is killed once the quota
cannot take more.

A retried job may find the staged file already converted (the declaration still names the
original format until the image goes active): data that is in the output format is then taken
as converted, after the same checks.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from glimpse.config.import_options import ImageConversionOptions, ImageFormatOptions
from glimpse.domain.errors import InvalidImageData
from glimpse.formats import inspect_file
from glimpse.services.quota import RESERVE_AHEAD, StorageQuota
from glimpse_worker.pipelines.sources import staged_path
from glimpse_worker.plugins import PluginFailed
from glimpse_worker.plugins.staging import replacement

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared
    from glimpse_worker.pipelines.sources import ImportJob

log = logging.getLogger(__name__)

# Glance disk formats qemu-img can read, with qemu-img's name where it differs.
QEMU_FORMATS: Final = {
    "raw": "raw",
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "vdi": "vdi",
}
VMDK_ALLOWED_TYPES: Final = frozenset({"monolithicSparse", "streamOptimized"})
BEAT_SECONDS: Final = 5.0
ERROR_CHARS: Final = 1000
MiB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one qemu-img run may use: address space (bytes), CPU seconds, wall seconds."""

    address_space: int
    cpu_seconds: int
    wall_seconds: float

    @classmethod
    def for_convert(cls, options: ImageConversionOptions) -> Limits:
        return cls(
            options.convert_memory_limit * MiB,
            options.convert_cpu_limit,
            float(options.convert_time_limit),
        )


# `qemu-img info` on a hostile image must not eat the machine (Glance's limits), nor hang.
INFO_LIMITS: Final = Limits(address_space=1024 * MiB, cpu_seconds=30, wall_seconds=120.0)


async def image_conversion(job: ImportJob, prepared: Prepared) -> None:
    target = job.runtime.settings.image_conversion.output_format
    declared = prepared.disk_format
    staged = staged_path(job.staged)
    found = await asyncio.to_thread(safe_format, staged, job.runtime.settings.image_format)
    if found == "iso":
        if declared == "iso":
            log.info("import task %s: an ISO image is not converted", job.task.id)
            return
        msg = f"Image has disallowed configuration: declared {declared} but it is an ISO image"
        raise PluginFailed(msg)
    if declared not in QEMU_FORMATS or found not in {declared, target}:
        raise PluginFailed(f"Image format mismatch: declared {declared}, found {found}")
    source = found  # the declared format, or the output format after an earlier run
    info = await _checked_info(job, staged, source)
    prepared.virtual_size = _virtual_size(info)
    cap = job.runtime.settings.image_size_cap
    if target == "raw" and (prepared.virtual_size or 0) > cap:
        # A raw image is as large as its virtual size: refuse before writing it.
        msg = (
            "Image conversion failed: the raw image would be larger than "
            f"image_size_cap ({cap} bytes)"
        )
        raise PluginFailed(msg)
    if source != target:
        await _convert(job, prepared, source, target)
        log.info("import task %s: converted from %s to %s", job.task.id, source, target)
    if declared != target:
        prepared.disk_format = target
        prepared.container_format = "bare"


async def _convert(job: ImportJob, prepared: Prepared, source: str, target: str) -> None:
    """Convert the staged file to `target`, the output reserved under the owner's quota
    before it is written: a raw output (as large as its virtual size) at once, another as it
    grows. The output replaces the staged file once it is complete and checked."""
    staged = staged_path(job.staged)
    quota = StorageQuota(job.runtime.settings, job.runtime.database)
    output = _ReservedOutput(job, quota)
    if target == "raw":
        output.granted = await quota.reserve(
            job.image.id, job.image.owner, prepared.virtual_size or 0
        )
    async with replacement(staged, target) as converted:
        output.path = converted
        convert = ("convert", "-f", QEMU_FORMATS[source], "-O", target)
        limits = Limits.for_convert(job.runtime.settings.image_conversion)
        await _qemu_img(
            job, *convert, str(staged), str(converted), limits=limits, watch=output.reserve
        )
        await output.reserve()
        if await asyncio.to_thread(detect_format, converted) != target:
            msg = f"Image conversion failed: the output is not {target}"
            raise PluginFailed(msg)
        prepared.virtual_size = _virtual_size(await _checked_info(job, converted, target))


class _ReservedOutput:
    """The conversion's output file, reserved as it grows (checked at every lease beat)."""

    def __init__(self, job: ImportJob, quota: StorageQuota) -> None:
        self.job = job
        self.quota = quota
        self.path: Path | None = None
        self.granted = 0

    async def reserve(self) -> None:
        size = await asyncio.to_thread(_size, self.path)
        if size > self.granted:
            image = self.job.image
            self.granted = await self.quota.reserve(image.id, image.owner, size, RESERVE_AHEAD)


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0  # qemu-img has not created it yet


def safe_format(path: Path, options: ImageFormatOptions) -> str | None:
    """The disk format the file's content shows, once the inspectors' safety checks pass
    (PluginFailed otherwise, naming the check). Blocking: run it in a thread."""
    inspection = inspect_file(path)
    try:
        # Checked as what it is: whether that is what it declares is the caller's question.
        inspection.check(
            inspection.format,
            require_match=True,
            gpt_nonfatal=options.gpt_safety_checks_nonfatal,
        )
    except InvalidImageData as exc:
        raise PluginFailed(f"Image conversion refused: {exc}") from None
    return _qemu_view(inspection.format)


def detect_format(path: Path) -> str | None:
    """The disk format the file's content shows (None: it could not be told)."""
    return _qemu_view(inspect_file(path).format)


def _qemu_view(found: str | None) -> str | None:
    return "raw" if found == "gpt" else found  # a partitioned disk is raw data to qemu-img


async def _checked_info(job: ImportJob, path: Path, disk_format: str) -> dict[str, Any]:
    """`qemu-img info` of a file in a given format, refusing what Glance refuses."""
    output = await _qemu_img(
        job, "info", "--output=json", "-f", QEMU_FORMATS[disk_format], str(path), limits=INFO_LIMITS
    )
    try:
        info = json.loads(output)
    except ValueError:
        raise PluginFailed("Image conversion failed: qemu-img info gave no JSON") from None
    if not isinstance(info, dict) or info.get("format") != QEMU_FORMATS[disk_format]:
        raise PluginFailed("Image metadata disagrees about format")
    if "backing-filename" in info or "full-backing-filename" in info:
        raise PluginFailed("Images with a backing file are not allowed")
    data = info.get("format-specific", {}).get("data", {})
    if isinstance(data, dict) and data.get("data-file") is not None:
        raise PluginFailed("Images with an external data file are not allowed")
    if disk_format == "vmdk":
        create_type = data.get("create-type") if isinstance(data, dict) else None
        if create_type not in VMDK_ALLOWED_TYPES:
            raise PluginFailed(f"Invalid VMDK create-type specified: {create_type}")
    return info


def _virtual_size(info: dict[str, Any]) -> int | None:
    size = info.get("virtual-size")
    return size if isinstance(size, int) else None


def _apply_limits(limits: Limits) -> None:
    """Between fork and exec: the child's own resource limits (soft and hard alike)."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))


async def _qemu_img(
    job: ImportJob,
    *args: str,
    limits: Limits,
    watch: Callable[[], Awaitable[None]] | None = None,
) -> bytes:
    """Run qemu-img under `limits`; its stdout, or PluginFailed with its error. Killed when
    cancelled, past its wall-clock limit, or when `watch` (awaited at every lease beat while
    it runs) raises; the job's lease is renewed while it runs."""
    try:
        process = await asyncio.create_subprocess_exec(
            "qemu-img",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Only setrlimit runs between fork and exec: safe in a threaded process.
            preexec_fn=functools.partial(_apply_limits, limits),
        )
    except OSError as exc:
        raise PluginFailed(f"Image conversion failed: cannot run qemu-img: {exc}") from None
    outputs = asyncio.ensure_future(process.communicate())
    try:
        finished = await _wait(job, outputs, limits.wall_seconds, watch)
    except BaseException:
        if process.returncode is None:
            process.kill()
        await asyncio.shield(outputs)
        raise
    if not finished:
        process.kill()
        await outputs
        msg = (
            f"Image conversion failed: qemu-img {args[0]} did not finish within "
            f"{limits.wall_seconds:g} s"
        )
        raise PluginFailed(msg)
    stdout, stderr = outputs.result()
    if process.returncode != 0:
        error = stderr.decode(errors="replace").strip()[-ERROR_CHARS:]
        msg = f"Image conversion failed: qemu-img {args[0]}: {error or _ended(process.returncode)}"
        raise PluginFailed(msg)
    return stdout


async def _wait(
    job: ImportJob,
    outputs: asyncio.Future[Any],
    seconds: float,
    watch: Callable[[], Awaitable[None]] | None,
) -> bool:
    """Wait for `outputs` at most `seconds`, renewing the job's lease (and calling `watch`)
    meanwhile; whether it finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not outputs.done():
        left = deadline - loop.time()
        if left <= 0:
            return False
        await asyncio.wait({outputs}, timeout=min(BEAT_SECONDS, left))
        await job.progress.beat()
        if watch is not None and not outputs.done():
            await watch()
    return True


def _ended(returncode: int | None) -> str:
    """How qemu-img ended, in words: a signal (SIGXCPU: its CPU limit) or an exit status."""
    if returncode is not None and returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"exit status {returncode}"
