"""glimpse.fork_sharing: before a fork, the heap's free pages go back to the system and the
objects left are frozen. Checked in a fresh interpreter, on its own heap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Holes in the middle of the heap: 100 KiB blocks (below glibc's mmap threshold, so on the
# heap), every other one freed, and the rest kept, so free() cannot give the holes back by
# shrinking the heap's top. Prints the heap's resident KiB before and after, and the frozen
# objects' count.
PROBE = textwrap.dedent(
    """
    import gc, json
    from glimpse.fork_sharing import settle_before_fork

    def heap_rss_kib():
        with open("/proc/self/smaps") as smaps:
            inside = False
            for line in smaps:
                if not line[0].isupper():
                    inside = line.rstrip().endswith("[heap]")
                elif inside and line.startswith("Rss:"):
                    return int(line.split()[1])
        return 0

    blocks = [b"x" * (100 << 10) for _ in range(640)]
    kept = blocks[1::2]
    del blocks
    before = heap_rss_kib()
    settle_before_fork()
    print(json.dumps([before, heap_rss_kib(), gc.get_freeze_count()]))
    """
)


def test_settling_releases_the_heaps_free_pages_and_freezes_the_objects() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    before, after, frozen = json.loads(done.stdout.splitlines()[-1])
    # 320 holes of 100 KiB: most of their pages went back (a plain gc.collect returns none).
    assert before - after >= 320 * 100 // 2
    assert frozen > 0
