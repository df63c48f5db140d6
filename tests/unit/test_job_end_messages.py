"""The messages the monitor posts after a job's end verification, and the verification's fixed id."""

from __future__ import annotations

from datetime import date

from bot.monitor.job_end import NAMED, failed_message, verdict_message, verify_id
from commands.verify_report import Mismatch, Totals, VerifyReport, report_json


def doc(mismatching: int) -> dict[str, object]:
    names = tuple(f"c{i:03d}" for i in range(mismatching + 5))
    report = VerifyReport(date(2026, 1, 3), date(2026, 1, 22), (1, 2, 3), names,
                          tuple(Mismatch(n, date(2026, 1, 5), "scorecards", 10, 9) for n in names[:mismatching]),
                          Totals(appeal_scorecards=0))
    return report_json(report, cap=20)


def test_the_verification_id_is_fixed_by_job_and_run() -> None:
    assert verify_id("b-7f3a2c", "1") == verify_id("b-7f3a2c", "1")
    assert len({verify_id("b-7f3a2c", "1"), verify_id("b-7f3a2c", "2"), verify_id("p-7f3a2c", "1")}) == 3
    assert verify_id("b-7f3a2c", "1").startswith("v-") and len(verify_id("b-7f3a2c", "1")) == 8


def test_a_verdict_names_the_mismatching_customers_within_slacks_limits() -> None:
    msg = verdict_message("b-7f3a2c", "v-123456", doc(NAMED + 3)).as_kwargs()
    text = str(msg["blocks"])
    assert msg["text"].startswith(":x: Verification v-123456 of b-7f3a2c: MISMATCH: 43 of 48 customers differ")
    assert "c039" in text and "c040" not in text and "and 3 more" in text
    clean = verdict_message("b-7f3a2c", "v-123456", doc(0)).as_kwargs()
    assert clean["text"].startswith(":white_check_mark: Verification v-123456 of b-7f3a2c: MATCH: 5 of 5")
    assert "Mismatching:*" not in str(clean["blocks"])


def test_a_verification_that_could_not_run_says_why_and_what_to_do() -> None:
    text = failed_message("p-1a2b3c", "OperationalError from Postgres or ClickHouse").text
    assert "could not run: OperationalError" in text and "/verify <customers> --job p-1a2b3c" in text
