"""`image_conversion`: the staged image converted with qemu-img to `[image_conversion]
output_format`, as Glance does it.

qemu-img never guesses a format: it is told the one the image declares, once a look at the
file's header agrees with the declaration. Images with a backing file or an external data file
are refused (they would make qemu-img read other files), as are VMDKs of a create-type other
than monolithicSparse and streamOptimized. An ISO stays an ISO when declared one and is refused
otherwise. qemu-img runs as a child process, killed if the job is cancelled.

A retried job may find the staged file already converted (the declaration still names the
original format until the image goes active): data that is in the output format is then taken
as converted, after the same qemu-img checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from glimpse.formats import inspect_file
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
# `qemu-img info` on a hostile image must not eat the machine (Glance's limits).
INFO_ADDRESS_SPACE: Final = 1024**3
INFO_CPU_SECONDS: Final = 30
BEAT_SECONDS: Final = 5.0
ERROR_CHARS: Final = 1000


async def image_conversion(job: ImportJob, prepared: Prepared) -> None:
    target = job.ctx.settings.image_conversion.output_format
    declared = prepared.disk_format
    staged = staged_path(job.staged)
    found = await asyncio.to_thread(detect_format, staged)
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
    cap = job.ctx.settings.image_size_cap
    if target == "raw" and (prepared.virtual_size or 0) > cap:
        # A raw image is as large as its virtual size: refuse before writing it.
        msg = (
            "Image conversion failed: the raw image would be larger than "
            f"image_size_cap ({cap} bytes)"
        )
        raise PluginFailed(msg)
    if source != target:
        async with replacement(staged, target) as converted:
            convert = ("convert", "-f", QEMU_FORMATS[source], "-O", target)
            await _qemu_img(job, *convert, str(staged), str(converted))
            if await asyncio.to_thread(detect_format, converted) != target:
                msg = f"Image conversion failed: the output is not {target}"
                raise PluginFailed(msg)
            prepared.virtual_size = _virtual_size(await _checked_info(job, converted, target))
        log.info("import task %s: converted from %s to %s", job.task.id, source, target)
    if declared != target:
        prepared.disk_format = target
        prepared.container_format = "bare"


def detect_format(path: Path) -> str | None:
    """The disk format the file's content shows (None: it could not be told)."""
    found = inspect_file(path).format
    return "raw" if found == "gpt" else found  # a partitioned disk is raw data to qemu-img


async def _checked_info(job: ImportJob, path: Path, disk_format: str) -> dict[str, Any]:
    """`qemu-img info` of a file in a given format, refusing what Glance refuses."""
    output = await _qemu_img(
        job, "info", "--output=json", "-f", QEMU_FORMATS[disk_format], str(path), limited=True
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


def _limit_info() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (INFO_ADDRESS_SPACE, INFO_ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CPU, (INFO_CPU_SECONDS, INFO_CPU_SECONDS))


async def _qemu_img(job: ImportJob, *args: str, limited: bool = False) -> bytes:
    """Run qemu-img; its stdout, or PluginFailed with its error. Killed when cancelled; the
    job's lease is renewed while it runs."""
    try:
        process = await asyncio.create_subprocess_exec(
            "qemu-img",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Only setrlimit runs between fork and exec: safe in a threaded process.
            preexec_fn=_limit_info if limited else None,
        )
    except OSError as exc:
        raise PluginFailed(f"Image conversion failed: cannot run qemu-img: {exc}") from None
    outputs = asyncio.ensure_future(process.communicate())
    try:
        while not outputs.done():
            await asyncio.wait({outputs}, timeout=BEAT_SECONDS)
            await job.progress.beat()
        stdout, stderr = outputs.result()
    except BaseException:
        if process.returncode is None:
            process.kill()
        await asyncio.shield(outputs)
        raise
    if process.returncode != 0:
        error = stderr.decode(errors="replace").strip()[-ERROR_CHARS:]
        msg = f"Image conversion failed: qemu-img {args[0]}: {error or process.returncode}"
        raise PluginFailed(msg)
    return stdout
