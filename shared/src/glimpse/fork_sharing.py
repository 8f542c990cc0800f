"""What a process does just before it forks children that are to share its pages copy-on-write
(`make run`'s preload, glimpse-api's master): each page either of them writes to afterwards
becomes a private copy."""

from __future__ import annotations

import gc

from glimpse.malloc_tuning import release_free_memory


def settle_before_fork() -> None:
    """Collect the garbage; give the free pages of the heap back to the system (the children's
    first allocations would otherwise land in them, a copy of each page per child); freeze every
    object left out of the cycle collector's reach (its passes in the children would write to
    every page that holds one)."""
    gc.collect()
    release_free_memory()
    gc.freeze()
