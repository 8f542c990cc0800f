"""Each service's entry point tunes glibc malloc (glimpse.malloc_tuning) before anything else:
checked in a real process that runs the entry point, then observes what malloc does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from glimpse.malloc_tuning import ARENA_MAX

# Runs `main(["--help"])` of an entry point (the help exits; the tuning has run by then), then:
# - frees a 16 MiB block (untuned, glibc raises its mmap threshold to its size) and allocates
#   15 MiB, just under it (untuned: from the heap), and far more than the free holes the
#   imports leave in the heap (8 MiB once fitted one, with coverage measuring the imports):
#   tuned, the block is mapped on its own (mallinfo2's hblkhd grows by it);
# - allocates from four threads alive together: the arenas malloc_info lists stay within
#   ARENA_MAX (untuned, each thread gets its own).
PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, importlib, json, os, sys, tempfile, threading

    module, function = sys.argv[1].split(":")
    if module:
        try:
            getattr(importlib.import_module(module), function)(["--help"])
        except SystemExit:
            pass

    FIELDS = ("arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost")

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = Mallinfo2
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)

    large = bytearray(16 << 20)
    del large
    mapped_before = libc.mallinfo2().hblkhd
    block = bytearray(15 << 20)
    block_mapped = libc.mallinfo2().hblkhd - mapped_before >= 15 << 20

    together = threading.Barrier(5)
    def allocate():
        kept = bytearray(64 << 10)
        together.wait()
        together.wait()
    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    together.wait()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "malloc_info.xml").encode()
        stream = libc.fopen(path, b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        arenas = open(path).read().count("<heap nr=")
    together.wait()
    for thread in threads:
        thread.join()
    print(json.dumps({"block_mapped": block_mapped, "arenas": arenas}))
    """
)

ENTRY_POINTS = (
    "glimpse_api.main:main",
    "glimpse_worker.main:main",
    "glimpse_scrubber.cli:main",
)


def _probe(entry_point: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, entry_point],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    observed: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return observed


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_entry_point_maps_large_blocks_and_bounds_arenas(entry_point: str) -> None:
    observed = _probe(entry_point)
    assert observed["block_mapped"] is True
    assert isinstance(observed["arenas"], int)
    assert 1 <= observed["arenas"] <= ARENA_MAX


def test_probe_sees_glibc_defaults_without_an_entry_point() -> None:
    # The same probe in a plain interpreter: the freed 16 MiB block raised the threshold, so
    # the 15 MiB block comes from the heap, and each thread has an arena of its own.
    observed = _probe(":")
    assert observed == {"block_mapped": False, "arenas": 5}
