"""The pure side of /verify: comparison, verdict, capped table, seeded weighted sampling."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from commands.verify_report import (
    DayCount,
    VerifyReport,
    compare,
    mismatch_rows,
    report_json,
    report_text,
    types_text,
    verdict,
    weighted_sample,
)

D0 = date(2026, 1, 3)


def days(customer: str, n: int, cards: int = 100, scores: int = 900) -> list[DayCount]:
    return [DayCount(customer, D0 + timedelta(days=i), cards, scores) for i in range(n)]


def run(pg: list[DayCount], ch: list[DayCount], appeal: list[DayCount] | None = None,
        customers: tuple[str, ...] = ("a", "b")) -> VerifyReport:
    return compare(customers, pg, ch, appeal or [], start=D0, end=D0 + timedelta(days=9), types=(1, 2, 3))


def test_identical_counts_match() -> None:
    pg = days("a", 10) + days("b", 10, 5, 40)
    report = run(pg, list(pg))
    assert report.ok and report.matching == 2 and report.mismatching == ()
    assert verdict(report).startswith("MATCH: 2 of 2 customers")
    assert "no appeal rows (types 1-3)" in verdict(report)
    assert report.totals.postgres_scorecards == 1050 and report.totals.clickhouse_scores == 9400


def test_a_missing_day_and_an_appeal_row_are_reported_exactly() -> None:
    pg = days("a", 10) + days("b", 10)
    ch = [c for c in pg if not (c.customer == "a" and c.day == D0 + timedelta(days=4))]
    appeal = [DayCount("b", D0 + timedelta(days=2), 1, 9)]
    report = run(pg, ch, appeal)
    got = [(m.customer, m.day, m.table, m.postgres, m.clickhouse, m.difference) for m in report.mismatches]
    day4, day2 = D0 + timedelta(days=4), D0 + timedelta(days=2)
    assert got == [("a", day4, "scorecards", 100, 0, -100), ("a", day4, "scores", 900, 0, -900),
                   ("b", day2, "appeal scorecards", 0, 1, 1), ("b", day2, "appeal scores", 0, 9, 9)]
    assert report.mismatching == ("a", "b") and report.matching == 0
    assert report.count_customers == ("a",) and report.appeal_customers == ("b",)
    text = verdict(report)
    assert "MISMATCH: 2 of 2" in text and "1 with counts" in text and "1 with appeal rows (types 1-3)" in text


def test_extra_rows_in_clickhouse_and_customers_outside_the_check() -> None:
    pg = days("a", 3)
    ch = [*pg[:2], DayCount("a", pg[2].day, 100, 901), DayCount("zz", D0, 5, 5)]
    report = run(pg, ch, customers=("a",))
    assert [(m.table, m.difference) for m in report.mismatches] == [("scores", 1)]
    assert report.customers == ("a",)


def test_the_table_is_capped_and_says_how_many_rows_were_left_out() -> None:
    pg = days("a", 30)
    report = compare(("a",), pg, [], [], start=D0, end=D0 + timedelta(days=29), types=(1, 2, 3))
    rows, rest = mismatch_rows(report, 20)
    assert len(rows) == 20 and rest == 40
    assert rows[0] == ["a", "2026-01-03", "scorecards", "100", "0", "-100"]
    text = report_text(report, cap=20)
    assert "... and 40 more rows (of 60)" in text
    assert "a (30 days differ)" in text
    assert text.splitlines()[-1].startswith("Verdict: MISMATCH: 1 of 1 customers differ")
    doc = report_json(report, cap=5)
    assert len(doc["mismatches"]) == 5 and doc["mismatches_not_listed"] == 55 and doc["ok"] is False
    assert report_json(report)["mismatches_not_listed"] == 0


def test_sampling_is_fixed_by_the_seed_and_independent_of_order() -> None:
    weights = {f"c{i}": (i + 1) * 10 for i in range(50)}
    a = weighted_sample(weights, 10, seed=42)
    b = weighted_sample(dict(reversed(list(weights.items()))), 10, seed=42)
    assert a == b and len(set(a)) == 10
    assert weighted_sample(weights, 10, seed=43) != a
    assert list(a) == sorted(a, key=lambda n: -weights[n])  # largest first
    assert set(weighted_sample(weights, 99, seed=1)) == set(weights)


def test_sampling_leans_toward_the_large_customers() -> None:
    weights = {"big": 90_000, "mid": 9_000, **{f"tail{i}": 300 for i in range(30)}}
    picks = Counter(name for seed in range(400) for name in weighted_sample(weights, 3, seed))
    assert picks["big"] > 380  # nearly always in a sample of 3
    assert picks["mid"] > picks["tail0"] * 3
    assert sum(picks[f"tail{i}"] for i in range(30)) > 50  # the small ones still get drawn
    assert weighted_sample({"empty": 0, "x": 0}, 1, seed=3)  # zero weights can still be drawn


def test_sample_line_and_types_text() -> None:
    report = compare(("a",), [], [], [], start=D0, end=D0, types=(1, 2, 3, 7), sample=1, population=95, seed=4242)
    text = report_text(report)
    assert "Sample: 1 of 95 customers" in text and "seed 4242 (repeat it with --seed 4242)" in text
    assert types_text((3, 1, 2, 7, 9, 10)) == "1-3,7,9-10"
    assert "appeal types 1-3,7" in text
