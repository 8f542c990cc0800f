"""`make tempest`'s verdict: what counts as passed, failed and missing, and the summary."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "tempest"))

import report  # noqa: E402 -- found through the path set just above
from tempest_run import Outcome  # noqa: E402 -- same

RESULTS = [
    Outcome("t.A.test_ok", "success", ""),
    Outcome("t.A.test_broken", "fail", "Traceback...\n  File x\nAssertionError: 404 != 200\n"),
    Outcome("t.B.test_skipped", "skip", "Nova is not available"),
    Outcome("setUpClass (t.C)", "skip", "Nova is not available"),
    Outcome("t.D.test_new", "success", ""),
]


def test_missing_failed_and_newly_passing() -> None:
    verdict = report.judge(RESULTS, {"t.A.test_ok", "t.A.test_broken", "t.B.test_skipped"})
    assert verdict.missing == ["t.A.test_broken", "t.B.test_skipped"]
    assert verdict.failed == ["t.A.test_broken"]
    assert verdict.newly_passing == ["t.D.test_new"]
    assert not verdict.ok


def test_a_failure_fails_the_run_even_when_not_expected_to_pass() -> None:
    verdict = report.judge(RESULTS, {"t.A.test_ok"})
    assert verdict.missing == []
    assert not verdict.ok
    clean = [r for r in RESULTS if r.status != "fail"]
    assert report.judge(clean, {"t.A.test_ok", "t.D.test_new"}).ok


def test_summary_counts_reasons_and_groups_skips() -> None:
    lines: list[str] = []
    report.summary(RESULTS, report.judge(RESULTS, {"t.A.test_ok"}), lines.append)
    text = "\n".join(lines)
    assert lines[0] == "tempest: ran 5, passed 2, skipped 2, failed 1"
    assert "  t.A.test_broken\n      AssertionError: 404 != 200" in text
    assert "  Nova is not available (2)\n      setUpClass (t.C)\n      t.B.test_skipped" in text
    assert "passed, not in the expected list (1):\n  t.D.test_new" in text


def test_expected_list_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    listing = tmp_path / "expected.txt"
    listing.write_text("# Glance's passing tests\n\nt.A.test_ok\n  t.B.test_two  \n")
    assert report.expected_passing(listing) == {"t.A.test_ok", "t.B.test_two"}
