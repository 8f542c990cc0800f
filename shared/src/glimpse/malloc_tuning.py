"""glibc malloc settings every Glimpse process applies first thing (its entry point calls
`limit_malloc_retention`); the processes it forks inherit them.

Why: image data streams through blocks of about 1 MiB (glimpse.stores.metering). By default
glibc serves a block that large with mmap, but once such a block is freed it raises its mmap
threshold above it (up to 32 MiB) and the heap trim threshold with it, so every later block
comes from the heap or a thread's arena and the freed memory stays resident for the life of
the process (its trim threshold grows too); and each thread that allocates (hashers, database
threads) may get an arena of its own. Fixed thresholds keep the heap's free top bounded, a
trim after each large stream returns what the blocks used, and two arenas bound what the
threads keep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Final

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
M_ARENA_MAX: Final = -8

# Above a transfer block (1 MiB): blocks come from the heap and are reused there (a fresh
# mapping per block costs its page faults again, about 0.26 CPU-s per GiB uploaded), while what
# is larger, and rare, is mapped and unmapped. The streams trim the heap when they end
# (release_free_memory), so reused blocks are not kept either.
MMAP_THRESHOLD: Final = 4 * 1024 * 1024
# Free memory at the top of the heap beyond this goes back to the system.
TRIM_THRESHOLD: Final = 8 * 1024 * 1024
# The main thread's heap and one arena shared by every other thread.
ARENA_MAX: Final = 2

SETTINGS: Final = (
    (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    (M_ARENA_MAX, ARENA_MAX),
)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    # musl and other C libraries have neither call: nothing to tune there.
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def limit_malloc_retention() -> bool:
    """Apply SETTINGS to this process (and those it will fork); False where the C library is
    not glibc or refuses one of them."""
    libc = _libc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)


def release_free_memory() -> None:
    """Give the free pages of every malloc arena back to the system (malloc_trim)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
