"""The table's rows, the figures the verdicts need, and the Markdown report."""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glimpse_bench.common import MB, iter_pattern

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass
class Results:
    """Rows of the table, kept in groups (MACHINE, THROUGHPUT, ...) printed in that order."""

    rows: list[tuple[int, str, str, str]] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group: int = 0

    def add(self, measure: str, value: str, notes: str = "", *, group: int | None = None) -> None:
        self.rows.append((self.group if group is None else group, measure, value, notes))
        print(f"  {measure}: {value}" + (f"  ({notes})" if notes else ""), flush=True)

    def table_rows(self) -> list[tuple[str, str, str]]:
        return [row[1:] for row in sorted(self.rows, key=lambda row: row[0])]


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def hash_rate(algorithm: str, total: int) -> float:
    """MB per CPU second of this thread, so other processes taking turns on the core do not
    count against the bound."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    started = time.thread_time()
    for chunk in iter_pattern(total):
        hasher.update(chunk)
    hasher.hexdigest()
    return total / max(time.thread_time() - started, 1e-9) / MB


def disk_rate(directory: Path, total: int) -> float:
    """Write `total` bytes and fsync them, as the file store does."""
    path = directory / "disk-probe"
    started = time.perf_counter()
    with path.open("wb") as handle:
        for chunk in iter_pattern(total):
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return total / elapsed / MB


@dataclass
class Figures:
    """The numbers the verdicts need (MB/s and bytes)."""

    md5: float = 0.0
    sha512: float = 0.0
    ceiling: float = 0.0
    upload: float = 0.0
    download: float = 0.0
    rss_growth: int = 0

    @property
    def hash_bound(self) -> float:
        return min(self.md5, self.sha512)

    def measure_hashing(self, size: int) -> None:
        """One pass of both hashes; each keeps its best pass."""
        self.md5 = max(self.md5, hash_rate("md5", size))
        self.sha512 = max(self.sha512, hash_rate("sha512", size))


def verdict(
    label: str, measured: float, bound: float, target: float
) -> tuple[str, str, str, str, str, str]:
    ratio = measured / bound if bound else 0.0
    return (
        label,
        f"{measured:.0f} MB/s",
        f"{bound:.0f} MB/s",
        f"{ratio:.0%}",
        f">= {target:.0%}",
        "PASS" if ratio >= target else "MISS",
    )


def markdown(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header) + " |", separator, *(line(row) + " |" for row in rows)])


def report(results: Results) -> None:
    print()
    print("## Glimpse benchmark (MB = 10^6 bytes)")
    print()
    print(markdown(("Measure", "Value", "Notes"), results.table_rows()))
    if results.verdicts:  # none when only the drivers were measured
        print()
        print("## Targets")
        print()
        header = ("Target", "Measured", "Bound", "Ratio", "Required", "Verdict")
        print(markdown(header, results.verdicts))
    for note in results.notes:
        print()
        print(f"Note: {note}")
    if results.errors:
        print()
        print("## Errors")
        print()
        for error in results.errors:
            print(f"- {error}")
