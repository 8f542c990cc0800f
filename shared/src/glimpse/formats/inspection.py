"""Disk-format inspection of image data, on oslo.utils' format inspectors.

The data is fed once, chunk by chunk, to every inspector; each keeps only the few header
regions it needs, so memory stays bounded whatever the image's size. The verdict follows
Glance's upload rules (see `Inspection.check`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from oslo_utils.imageutils import format_inspector as oslo

from glimpse.domain.errors import InvalidImageData

log = logging.getLogger(__name__)

# disk_formats an inspector knows; any other (ami, ari, aki, ploop) cannot be inspected.
INSPECTABLE_FORMATS = frozenset(oslo.ALL_FORMATS)

# Kernel and ramdisk images may carry a deliberately invalid but recognisable MBR.
_MBR_TOLERANT_FORMATS = frozenset({"aki", "ari"})

_FILE_CHUNK = 1024 * 1024
_FEED_SLICE = 64 * 1024


def inspected_container(container_format: str | None) -> bool:
    """Whether data in this container is inspected: only `bare` data is a disk image as is."""
    return container_format == "bare"


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the data turned out to be.

    `format` is the detected format ("raw" when nothing specific matched), `virtual_size` the
    disk size its header announces (raw: the byte count), `size` the bytes inspected. When
    detection itself failed (several formats matched, a corrupt header), `format` is None and
    `problem` says why.
    """

    format: str | None
    virtual_size: int | None
    size: int
    problem: str | None
    _inspector: oslo.FileInspector | None

    def check(
        self,
        declared_disk_format: str | None,
        require_match: bool,
        gpt_nonfatal: Iterable[str] = (),
    ) -> int | None:
        """Refuse data that is unsafe or (with `require_match`) not the declared disk_format,
        raising InvalidImageData with the reason. Return the virtual size to record, or None
        when it is unknown.

        Glance's rules: a declared `raw` accepts any content (its virtual size is then its
        byte count); a declared format no inspector knows (ami, ari, aki) accepts content
        that matched nothing specific; otherwise detected and declared must be equal.
        """
        if self.format is None or self._inspector is None:
            if require_match:
                raise InvalidImageData(self.problem or "Image format inspection failed")
            log.warning("image format not determined (%s); accepted", self.problem)
            return None
        virtual_size: int | None = None
        if self.format == declared_disk_format:
            virtual_size = self.virtual_size
        elif self.format == "raw" and declared_disk_format not in INSPECTABLE_FORMATS:
            pass
        elif declared_disk_format == "raw":
            log.warning("image declared raw holds %s data; accepted as raw", self.format)
            virtual_size = self.size
        elif require_match:
            raise InvalidImageData(
                f"Image disk_format {declared_disk_format} does not match stream data {self.format}"
            )
        else:
            # Glance stops here without safety checks; unsafe data is refused all the same.
            log.warning("image disk_format %s holds %s data", declared_disk_format, self.format)
        self._check_safety(declared_disk_format, require_match, frozenset(gpt_nonfatal))
        return virtual_size or None

    def _check_safety(
        self,
        declared_disk_format: str | None,
        require_match: bool,
        gpt_nonfatal: frozenset[str],
    ) -> None:
        inspector = self._inspector
        assert inspector is not None  # noqa: S101 -- check() returns earlier without one
        try:
            inspector.safety_check()
        except oslo.SafetyCheckFailed as exc:
            fatal = set(exc.failures) - gpt_nonfatal
            if declared_disk_format in _MBR_TOLERANT_FORMATS:
                fatal.discard("mbr")
            reasons = "; ".join(f"{name}: {failure}" for name, failure in exc.failures.items())
            if inspector.NAME == "gpt" and not fatal:
                log.warning("gpt safety checks failed, configured non-fatal: %s", reasons)
                return
            raise InvalidImageData(
                f"Image failed safety checks ({inspector.NAME}): {reasons}"
            ) from exc
        except oslo.ImageFormatError as exc:
            # E.g. a header that matched but whose file ended before inspection completed.
            if require_match:
                raise InvalidImageData(f"Image failed safety checks: {exc}") from exc
            log.warning("image could not be safety-checked: %s", exc)


class StreamInspector:
    """Inspects data as it passes: `feed` each chunk (or `watch` a stream), then `result`."""

    def __init__(self) -> None:
        self._inspectors = [inspector() for inspector in oslo.ALL_FORMATS.values()]
        self._failed: set[oslo.FileInspector] = set()
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        sliced = []
        for inspector in self._inspectors:
            if inspector in self._failed:
                continue
            if len(chunk) <= _FEED_SLICE or _settled(inspector):
                self._eat(inspector, chunk)
            else:
                sliced.append(inspector)
        if sliced:
            # An inspector can follow a header to a region only while the chunk holding it is
            # fed (a VHDX's metadata entries): feed at most what Glance's stores read at once.
            view = memoryview(chunk)
            for start in range(0, len(chunk), _FEED_SLICE):
                piece = view[start : start + _FEED_SLICE]
                for inspector in sliced:
                    if inspector not in self._failed:
                        self._eat(inspector, piece)

    def _eat(self, inspector: oslo.FileInspector, chunk: bytes | memoryview) -> None:
        try:
            # A slice is a memoryview (not a copy): the inspectors only slice and append it.
            inspector.eat_chunk(chunk)  # type: ignore[arg-type]  # any buffer does
        except Exception as exc:  # noqa: BLE001 -- a parser's error rules its format out of further feeding, as in oslo's InspectWrapper
            log.debug("%s inspector stopped: %s", inspector.NAME, exc)
            self._failed.add(inspector)

    async def watch(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Pass `chunks` through unchanged, feeding each to the inspectors on the way."""
        async for chunk in chunks:
            self.feed(chunk)
            yield chunk

    def result(self) -> Inspection:
        """The verdict once all the data has been fed."""
        for inspector in self._inspectors:
            inspector.finish()
        try:
            inspector = self._detected()
            virtual_size = inspector.virtual_size
        except oslo.ImageFormatError as exc:
            return Inspection(None, None, self._size, str(exc), None)
        except Exception as exc:  # noqa: BLE001 -- a corrupt header breaks the parsers in many ways
            log.warning("image format inspection failed: %s", exc)
            return Inspection(None, None, self._size, "Image format inspection failed", None)
        return Inspection(inspector.NAME, virtual_size, self._size, None, inspector)

    def _detected(self) -> oslo.FileInspector:
        # Inspectors that stopped on an error still count: their header may have matched
        # (a VMDK whose descriptor is refused must not pass for raw data).
        matches = {i.NAME: i for i in self._inspectors if i.NAME != "raw" and i.format_match}
        if not matches:
            return next(i for i in self._inspectors if i.NAME == "raw")
        if matches.keys() == {"iso", "gpt"}:
            # A bootable ISO legitimately starts with a GPT boot loader.
            return matches["iso"]
        if len(matches) > 1:
            # One header hidden inside another: never guess.
            raise oslo.ImageFormatError(f"Multiple formats detected: {','.join(sorted(matches))}")
        return next(iter(matches.values()))


def _settled(inspector: oslo.FileInspector) -> bool:
    """Whether more data can change nothing but the inspector's byte count: it has every
    region it asked for (none of them the stream's end) and no post-read processing that
    could ask for more. It takes any chunk whole then (one call, not one per slice)."""
    return inspector.complete and type(inspector).post_process is oslo.FileInspector.post_process


def inspect_file(path: Path) -> Inspection:
    """Inspect a whole file (blocking: run it in a thread)."""
    inspector = StreamInspector()
    with path.open("rb") as source:
        while chunk := source.read(_FILE_CHUNK):
            inspector.feed(chunk)
    return inspector.result()
