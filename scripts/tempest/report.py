"""tempest's results summed up, and held against the tests expected to pass."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tempest_run import Outcome

PASSED = {"success", "xfail"}


def expected_passing(path: Path) -> set[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _reason(detail: str) -> str:
    """The line that says why: a traceback's last non-empty line, or a skip's reason."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no detail)"


@dataclass(frozen=True)
class Verdict:
    missing: list[str]  # expected to pass, did not
    failed: list[str]
    newly_passing: list[str]  # passed, not in the expected list

    @property
    def ok(self) -> bool:
        return not self.missing and not self.failed


def judge(results: list[Outcome], expected: set[str]) -> Verdict:
    passed = {r.id for r in results if r.status in PASSED}
    return Verdict(
        missing=sorted(expected - passed),
        failed=sorted(r.id for r in results if r.status not in PASSED | {"skip"}),
        newly_passing=sorted(passed - expected),
    )


def _counts(results: list[Outcome]) -> dict[str, int]:
    counts = {"ran": len(results), "passed": 0, "skipped": 0, "failed": 0}
    for result in results:
        if result.status in PASSED:
            counts["passed"] += 1
        elif result.status == "skip":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
    return counts


def _listing(title: str, ids: list[str], say: Callable[[str], None]) -> None:
    if ids:
        say(f"\n{title} ({len(ids)}):")
        for test_id in ids:
            say(f"  {test_id}")


def summary(results: list[Outcome], verdict: Verdict, say: Callable[[str], None]) -> None:
    """Counts; each failure with its reason; skips grouped by reason; the comparison."""
    counts = _counts(results)
    say("tempest: " + ", ".join(f"{name} {number}" for name, number in counts.items()))
    failures = sorted((r for r in results if r.status not in PASSED | {"skip"}), key=lambda r: r.id)
    if failures:
        say(f"\nfailures ({len(failures)}):")
        for result in failures:
            say(f"  {result.id}\n      {_reason(result.detail)}")
    skips: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if result.status == "skip":
            skips[_reason(result.detail)].append(result.id)
    if skips:
        say(f"\nskips ({counts['skipped']}), by reason:")
        for reason, ids in sorted(skips.items(), key=lambda item: (-len(item[1]), item[0])):
            say(f"  {reason} ({len(ids)})")
            for test_id in sorted(ids):
                say(f"      {test_id}")
    _listing("expected to pass and did not", verdict.missing, say)
    _listing("passed, not in the expected list", verdict.newly_passing, say)
