"""Shared helpers of the compatibility tests (imported by conftest and the test modules)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A file on disk and the digests the server should report for it."""

    path: Path
    size: int
    md5: str
    sha512: str

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class CompatServer:
    url: str
    log_file: Path
    datadir: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def write_image(path: Path, chunks: Iterable[bytes]) -> ImageFile:
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    size = 0
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            md5.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
    return ImageFile(path=path, size=size, md5=md5.hexdigest(), sha512=sha512.hexdigest())


def qcow2_bytes(virtual_size: int = MiB) -> bytes:
    """An empty but well-formed qcow2 (version 3) image, as `qemu-img create -f qcow2` makes.

    Four 64 KiB clusters: header, refcount table, refcount block, L1 table.
    """
    cluster_bits = 16
    cluster = 1 << cluster_bits
    l2_entries = cluster // 8
    l1_size = -(-virtual_size // (cluster * l2_entries))
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",  # magic
        3,  # version
        0,  # backing_file_offset
        0,  # backing_file_size
        cluster_bits,
        virtual_size,
        0,  # crypt_method
        l1_size,
        3 * cluster,  # l1_table_offset
        1 * cluster,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        0,  # incompatible_features
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order: 16-bit refcounts
        104,  # header_length
    )
    data = bytearray(4 * cluster)
    data[: len(header)] = header
    # Header extension area: just the end marker (type 0, length 0) -- already zero bytes.
    struct.pack_into(">Q", data, 1 * cluster, 2 * cluster)  # refcount table -> block
    for index in range(4):  # every cluster of the file is referenced once
        struct.pack_into(">H", data, 2 * cluster + 2 * index, 1)
    return bytes(data)
