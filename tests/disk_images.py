"""Disk images for format-inspection tests: made by qemu-img where it can, by hand where the
format is a few signature bytes (ISO, GPT) or qemu-img cannot be relied on (LUKS), and
tampered with where an attack needs it."""

from __future__ import annotations

import functools
import json
import os
import struct
import subprocess
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

MiB = 1024 * 1024
SECTOR = 512


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def qemu_virtual_size(path: Path, fmt: str) -> int:
    """The virtual size qemu-img itself reads from the file."""
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", fmt, str(path)],
        check=True,
        capture_output=True,
    )
    size: int = json.loads(out.stdout)["virtual-size"]
    return size


def _created(directory: Path, name: str, fmt: str, *options: str) -> Path:
    path = directory / name
    qemu_img("create", "-q", "-f", fmt, *options, str(path), "1M")
    return path


def raw(directory: Path) -> Path:
    path = directory / "disk.raw"
    path.write_bytes(bytes(range(256)) * 4096)
    return path


def qcow2(directory: Path) -> Path:
    return _created(directory, "disk.qcow2", "qcow2")


def vhd(directory: Path) -> Path:
    # force_size keeps the size asked for instead of rounding it to a CHS geometry.
    return _created(directory, "disk.vhd", "vpc", "-o", "force_size=on")


def vhdx(directory: Path) -> Path:
    return _created(directory, "disk.vhdx", "vhdx")


def vmdk_sparse(directory: Path) -> Path:
    return _created(directory, "sparse.vmdk", "vmdk", "-o", "subformat=monolithicSparse")


def vmdk_stream(directory: Path) -> Path:
    return _created(directory, "stream.vmdk", "vmdk", "-o", "subformat=streamOptimized")


def vdi(directory: Path) -> Path:
    return _created(directory, "disk.vdi", "vdi")


def luks(directory: Path) -> Path:
    path = directory / "disk.luks"
    path.write_bytes(_luks_bytes())
    return path


# LUKS v1 as `qemu-img create -f luks` lays it out for a 1 MiB volume (AES-256-XTS, SHA-256):
# eight key slots of 4000 stripes of the 64-byte key, 504 sectors apart from sector 8, and the
# payload from sector 4040. Built by hand: qemu-img times its key derivation first, and that
# timing fails outright on some machines ("Unable to get accurate CPU usage").
_LUKS_KEY_BYTES = 64
_LUKS_STRIPES = 4000
_LUKS_SLOT_SECTORS = 504
_LUKS_PAYLOAD_SECTOR = 4040


@functools.cache
def _luks_bytes() -> bytes:
    """A LUKS v1 volume of 1 MiB with one key slot in use; the key material and the payload are
    random bytes, as encrypted ones look."""
    header = struct.pack(
        ">6sH32s32s32sII20s32sI40s",
        b"LUKS\xba\xbe", 1, b"aes", b"xts-plain64", b"sha256",
        _LUKS_PAYLOAD_SECTOR, _LUKS_KEY_BYTES, os.urandom(20), os.urandom(32),
        93703, str(uuid.uuid4()).encode(),
    )  # fmt: skip
    slots = []
    for number in range(8):
        first_sector = 8 + number * _LUKS_SLOT_SECTORS
        if number == 0:
            slots.append(struct.pack(">II32sII", 0x00AC71F3, 364088, os.urandom(32),
                                     first_sector, _LUKS_STRIPES))  # fmt: skip
        else:
            slots.append(
                struct.pack(">II32sII", 0x0000DEAD, 0, bytes(32), first_sector, _LUKS_STRIPES)
            )
    volume = bytearray(_LUKS_PAYLOAD_SECTOR * SECTOR + MiB)
    volume[: len(header) + 8 * 48] = header + b"".join(slots)
    key_material = 8 * SECTOR
    volume[key_material : key_material + _LUKS_KEY_BYTES * _LUKS_STRIPES] = os.urandom(
        _LUKS_KEY_BYTES * _LUKS_STRIPES
    )
    volume[_LUKS_PAYLOAD_SECTOR * SECTOR :] = os.urandom(MiB)
    return bytes(volume)


def _iso_descriptor(kind: int, blocks: int = 0) -> bytes:
    descriptor = bytearray(2048)
    descriptor[0] = kind
    descriptor[1:6] = b"CD001"
    descriptor[6] = 1  # version
    if kind == 1:  # primary volume descriptor: sizes are stored little- then big-endian
        descriptor[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
        descriptor[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    return bytes(descriptor)


def iso(directory: Path) -> Path:
    """An ISO 9660 of 1 MiB: 16 empty system sectors, then the volume descriptors."""
    blocks = MiB // 2048
    data = bytearray(MiB)
    data[32768 : 32768 + 2048] = _iso_descriptor(1, blocks)
    data[34816 : 34816 + 2048] = _iso_descriptor(255)  # set terminator
    path = directory / "disk.iso"
    path.write_bytes(bytes(data))
    return path


def _protective_mbr(sectors: int, *, extra_partition: bool = False) -> bytes:
    mbr = bytearray(SECTOR)
    # One partition of type 0xEE covering the disk, starting at LBA 1 (CHS 0/2/0).
    entry = struct.pack("<B3BB3BII", 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, sectors - 1)
    mbr[446:462] = entry
    if extra_partition:
        # A second, Linux, partition: not allowed next to a protective one.
        mbr[462:478] = struct.pack("<B3BB3BII", 0, 0, 0, 0, 0x83, 0, 0, 0, 2048, 2048)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def _gpt_header(sectors: int) -> bytes:
    entries_crc = zlib.crc32(bytes(128 * 128))
    fields = [
        b"EFI PART",
        0x00010000,  # revision 1.0
        92,  # header size
        0,  # header CRC, filled in below
        0,  # reserved
        1,  # this header's LBA
        sectors - 1,  # backup header's LBA
        34,  # first usable LBA
        sectors - 34,  # last usable LBA
        uuid.uuid4().bytes_le,  # disk GUID
        2,  # partition entries' LBA
        128,  # number of entries
        128,  # size of an entry
        entries_crc,
    ]
    layout = "<8sIIIIQQQQ16sQIII"
    header = struct.pack(layout, *fields)
    fields[3] = zlib.crc32(header)
    return struct.pack(layout, *fields).ljust(SECTOR, b"\0")


def gpt(directory: Path, *, extra_partition: bool = False) -> Path:
    """A 1 MiB disk with a protective MBR and an empty GUID partition table."""
    sectors = MiB // SECTOR
    data = bytearray(MiB)
    data[0:SECTOR] = _protective_mbr(sectors, extra_partition=extra_partition)
    data[SECTOR : 2 * SECTOR] = _gpt_header(sectors)
    path = directory / ("bad-mbr.gpt" if extra_partition else "disk.gpt")
    path.write_bytes(bytes(data))
    return path


def iso_with_gpt(directory: Path) -> Path:
    """A bootable-as-disk ("hybrid") ISO: a protective MBR in front of the ISO volume."""
    path = iso(directory)
    data = bytearray(path.read_bytes())
    data[0:SECTOR] = _protective_mbr(MiB // SECTOR)
    path.write_bytes(bytes(data))
    return path


# -- hostile images ---------------------------------------------------------------------


def qcow2_with_backing_file(directory: Path) -> Path:
    base = directory / "base.raw"
    base.write_bytes(bytes(MiB))
    path = directory / "backed.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(path))
    return path


def qcow2_with_data_file(directory: Path) -> Path:
    return _created(
        directory, "external.qcow2", "qcow2", "-o", f"data_file={directory / 'external.data'}"
    )


def vmdk_flat_descriptor(directory: Path) -> Path:
    """A text VMDK descriptor whose extent is another file (createType monolithicFlat)."""
    return _created(directory, "flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat")


def vmdk_extent_path(directory: Path) -> Path:
    """A sparse VMDK whose embedded descriptor names a host file as its extent."""
    path = vmdk_sparse(directory)
    data = bytearray(path.read_bytes())
    descriptor = data[SECTOR : 4 * SECTOR]
    original = b'RW 2048 SPARSE "sparse.vmdk"'
    assert original in descriptor  # qemu-img's layout, checked before tampering
    tampered = descriptor.replace(original, b'RW 2048 SPARSE "/etc/shadow"')
    data[SECTOR : SECTOR + len(tampered)] = tampered
    path.write_bytes(bytes(data))
    return path


def qcow2_hiding_an_iso(directory: Path) -> Path:
    """A qcow2 that also carries an ISO volume descriptor: two formats at once."""
    path = qcow2(directory)
    data = bytearray(path.read_bytes())
    data[32768 : 32768 + 2048] = _iso_descriptor(1, 512)
    path.write_bytes(bytes(data))
    return path


# Well-formed samples made by qemu-img: builder, disk_format, the name qemu-img gives it.
GOOD: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "qcow2": (qcow2, "qcow2", "qcow2"),
    "vhd": (vhd, "vhd", "vpc"),
    "vhdx": (vhdx, "vhdx", "vhdx"),
    "vmdk-monolithicSparse": (vmdk_sparse, "vmdk", "vmdk"),
    "vmdk-streamOptimized": (vmdk_stream, "vmdk", "vmdk"),
    "vdi": (vdi, "vdi", "vdi"),
}

# Hostile samples: builder, the disk_format they claim, what the refusal names.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "qcow2-backing-file": (qcow2_with_backing_file, "qcow2", "backing_file"),
    "qcow2-data-file": (qcow2_with_data_file, "qcow2", "data_file"),
    "vmdk-monolithicFlat": (vmdk_flat_descriptor, "vmdk", "Unsupported subformat"),
    "vmdk-extent-path": (vmdk_extent_path, "vmdk", "Invalid extent filenames"),
}
