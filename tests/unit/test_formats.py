"""Format inspection (glimpse.formats) on real images made by qemu-img or built byte by byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import disk_images
from disk_images import GOOD, HOSTILE, MiB
from glimpse.domain.errors import InvalidImageData
from glimpse.formats import Inspection, StreamInspector, inspect_file


def inspected_in_chunks(path: Path, size: int) -> Inspection:
    inspector = StreamInspector()
    data = path.read_bytes()
    for start in range(0, len(data), size):
        inspector.feed(data[start : start + size])
    return inspector.result()


@pytest.mark.parametrize("name", GOOD)
def test_qemu_img_images_are_detected_with_qemu_img_s_virtual_size(
    name: str, tmp_path: Path
) -> None:
    build, disk_format, qemu_format = GOOD[name]
    path = build(tmp_path)
    inspection = inspect_file(path)
    assert inspection.format == disk_format
    assert inspection.size == path.stat().st_size
    assert inspection.virtual_size == disk_images.qemu_virtual_size(path, qemu_format) == MiB
    assert inspection.check(disk_format, require_match=True) == MiB


@pytest.mark.parametrize("chunk", [511, 65537, 16 * MiB])
def test_chunk_boundaries_do_not_change_the_verdict(chunk: int, tmp_path: Path) -> None:
    for build in (disk_images.vmdk_stream, disk_images.qcow2, disk_images.vhdx):
        path = build(tmp_path)
        streamed = inspected_in_chunks(path, chunk)
        whole = inspect_file(path)
        assert (streamed.format, streamed.virtual_size) == (whole.format, whole.virtual_size)
        assert streamed.virtual_size == MiB


def _verdict(inspection: Inspection, declared: str) -> tuple[object, ...]:
    try:
        outcome: object = inspection.check(declared, require_match=True)
    except InvalidImageData as exc:
        outcome = str(exc)
    return (
        inspection.format,
        inspection.virtual_size,
        inspection.size,
        inspection.problem,
        outcome,
    )


SAMPLES: dict[str, tuple[Callable[[Path], Path], str]] = {
    **{name: (build, declared) for name, (build, declared, _) in GOOD.items()},
    **{name: (build, declared) for name, (build, declared, _) in HOSTILE.items()},
    "raw": (disk_images.raw, "raw"),
    "luks": (disk_images.luks, "luks"),
    "iso": (disk_images.iso, "iso"),
    "gpt": (disk_images.gpt, "gpt"),
    "iso-with-gpt": (disk_images.iso_with_gpt, "iso"),
    "qcow2-hiding-an-iso": (disk_images.qcow2_hiding_an_iso, "qcow2"),
}


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("chunk", [64 * 1024 + 1, 256 * 1024, MiB, 4 * MiB])
def test_large_chunks_give_the_verdict_of_64_kib_ones(
    name: str, chunk: int, tmp_path: Path
) -> None:
    """Past its first chunk an inspector that can learn nothing more takes a chunk whole
    instead of in 64 KiB slices: the verdict is the one 64 KiB chunks give. The samples are
    followed by zeros so that there are several large chunks."""
    build, declared = SAMPLES[name]
    path = tmp_path / "padded"
    path.write_bytes(build(tmp_path).read_bytes() + bytes(3 * MiB + 123))
    expected = _verdict(inspected_in_chunks(path, 64 * 1024), declared)
    assert _verdict(inspected_in_chunks(path, chunk), declared) == expected


@pytest.mark.parametrize(
    ("build", "detected", "virtual_size"),
    [
        (disk_images.raw, "raw", MiB),
        (disk_images.luks, "luks", MiB),
        (disk_images.iso, "iso", MiB),
        (disk_images.gpt, "gpt", MiB),
        # A hybrid ISO starts with a boot loader's MBR: it is an ISO.
        (disk_images.iso_with_gpt, "iso", MiB),
    ],
)
def test_formats_qemu_img_does_not_make_here(
    build: Callable[[Path], Path], detected: str, virtual_size: int, tmp_path: Path
) -> None:
    inspection = inspect_file(build(tmp_path))
    assert (inspection.format, inspection.virtual_size) == (detected, virtual_size)
    assert inspection.check(detected, require_match=True) == virtual_size


def test_declared_raw_takes_any_safe_content_at_its_byte_size(tmp_path: Path) -> None:
    path = disk_images.qcow2(tmp_path)
    assert inspect_file(path).check("raw", require_match=True) == path.stat().st_size


def test_uninspectable_formats_take_content_that_matched_nothing(tmp_path: Path) -> None:
    inspection = inspect_file(disk_images.raw(tmp_path))
    for disk_format in ("ami", "ari", "aki", "ploop"):
        assert inspection.check(disk_format, require_match=True) is None
    qcow2 = inspect_file(disk_images.qcow2(tmp_path))
    with pytest.raises(InvalidImageData, match="disk_format ami does not match stream data qcow2"):
        qcow2.check("ami", require_match=True)


def test_a_mismatch_is_refused_unless_matching_is_not_required(tmp_path: Path) -> None:
    inspection = inspect_file(disk_images.qcow2(tmp_path))
    with pytest.raises(InvalidImageData, match="disk_format vmdk does not match stream data qcow2"):
        inspection.check("vmdk", require_match=True)
    assert inspection.check("vmdk", require_match=False) is None
    plain = inspect_file(disk_images.raw(tmp_path))
    with pytest.raises(InvalidImageData, match="disk_format qcow2 does not match stream data raw"):
        plain.check("qcow2", require_match=True)


@pytest.mark.parametrize("name", HOSTILE)
def test_unsafe_images_are_refused_whatever_they_claim(name: str, tmp_path: Path) -> None:
    build, disk_format, reason = HOSTILE[name]
    inspection = inspect_file(build(tmp_path))
    assert inspection.format == disk_format
    for declared, require_match in ((disk_format, True), ("raw", True), ("iso", False)):
        with pytest.raises(InvalidImageData, match=f"Image failed safety checks.*{reason}"):
            inspection.check(declared, require_match=require_match)


def test_two_formats_in_one_file_are_refused(tmp_path: Path) -> None:
    inspection = inspect_file(disk_images.qcow2_hiding_an_iso(tmp_path))
    assert inspection.format is None
    assert inspection.problem == "Multiple formats detected: iso,qcow2"
    for declared in ("qcow2", "iso", "raw"):
        with pytest.raises(InvalidImageData, match="Multiple formats detected"):
            inspection.check(declared, require_match=True)
    assert inspection.check("qcow2", require_match=False) is None


def test_gpt_with_a_bad_protective_mbr(tmp_path: Path) -> None:
    inspection = inspect_file(disk_images.gpt(tmp_path, extra_partition=True))
    assert inspection.format == "gpt"
    for declared in ("gpt", "raw"):
        with pytest.raises(InvalidImageData, match="mbr: GPT MBR defines invalid extra partitions"):
            inspection.check(declared, require_match=True)
    # [image_format] gpt_safety_checks_nonfatal relaxes it; kernels (aki) always may have one.
    assert inspection.check("gpt", require_match=True, gpt_nonfatal=["mbr"]) == MiB
    assert inspection.check("aki", require_match=False) is None


def test_a_luks_v2_volume_is_refused(tmp_path: Path) -> None:
    path = disk_images.luks(tmp_path)
    data = bytearray(path.read_bytes())
    data[6:8] = (2).to_bytes(2, "big")  # the header's version field
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidImageData, match="version: LUKS version 2 is not supported"):
        inspect_file(path).check("luks", require_match=True)


def test_empty_data_is_raw_of_unknown_size() -> None:
    inspection = StreamInspector().result()
    assert (inspection.format, inspection.size) == ("raw", 0)
    assert inspection.check("raw", require_match=True) is None
