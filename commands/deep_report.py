"""The deep verification's report: today's count report, plus every differing row by kind, per customer
and per day, as text (CLI, Slack) and as JSON (every row)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from commands.deep_rows import KIND_TEXT, KINDS, RowDiff, diff_json
from commands.render import table
from commands.verify_report import VerifyReport, report_json, report_text

DEEP_CAP = 20


@dataclass(frozen=True)
class DaySize:
    """A differing day's rows: what Postgres holds (scorecards, scores) and what ClickHouse holds."""

    customer: str
    day: date
    scorecards: int
    scores: int
    clickhouse: int = 0

    @property
    def postgres(self) -> int:
        return self.scorecards + self.scores


@dataclass(frozen=True)
class DeepReport:
    counts: VerifyReport  # the count verification of the same scope
    rows: tuple[RowDiff, ...]  # every differing row, by customer, day, id
    days_checked: int = 0  # (customer, day) pairs checksummed
    days_differing: tuple[tuple[str, date], ...] = ()
    segments_checked: int = 0  # id segments checksummed while bisecting
    rows_fetched: int = 0  # rows read (both sides) to name the differences
    timings: dict[str, float] = field(default_factory=dict)
    unnamed_segments: int = 0  # differing segments not fetched (over the fetch budget): their rows are not listed
    day_sizes: tuple[DaySize, ...] = ()  # each differing day's rows on both sides (what a repair copies)

    @property
    def ok(self) -> bool:
        return self.counts.ok and not self.rows and not self.days_differing

    @property
    def by_kind(self) -> dict[str, int]:
        found = Counter(d.kind for d in self.rows)
        return {k: found[k] for k in KINDS if found[k]}

    @property
    def customers_differing(self) -> tuple[str, ...]:
        return tuple(sorted({d.customer for d in self.rows} | {c for c, _ in self.days_differing}))

    def per_customer(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for d in self.rows:
            out.setdefault(d.customer, Counter())[d.kind] += 1
        return {c: {k: n[k] for k in KINDS if n[k]} for c, n in sorted(out.items())}

    def per_day(self) -> dict[date, int]:
        return dict(sorted(Counter(d.day for d in self.rows).items()))

    def per_day_and_kind(self) -> dict[str, dict[str, int]]:
        """{"2026-01-20": {"missing": 3, "changed": 1}}: what the chart draws."""
        out: dict[str, Counter[str]] = {}
        for d in self.rows:
            out.setdefault(d.day.isoformat(), Counter())[d.kind] += 1
        return {day: dict(n) for day, n in sorted(out.items())}


def kinds_phrase(counts: dict[str, int]) -> str:
    """{"missing": 12, "appeal": 3} -> "missing in ClickHouse 12, appeal row present 3"."""
    return ", ".join(f"{KIND_TEXT[k]} {n:,}" for k, n in counts.items())


def deep_verdict(report: DeepReport) -> str:
    n = len(report.counts.customers)
    span = f"{report.counts.start} to {report.counts.end}"
    if report.ok:
        return (f"MATCH: {n} of {n} customers match Postgres row by row ({span}): every column of every "
                f"scorecard and score; no appeal rows in ClickHouse.")
    missed = ""
    if report.counts.ok:
        missed = " The counts alone match: only the checksums see these."
    rows = kinds_phrase(report.by_kind) or "checksums differ, no row named"
    partial = (f" Only part of the rows are named: {report.unnamed_segments:,} differing segments were not read."
               if report.unnamed_segments else "")
    return (f"MISMATCH: {len(report.customers_differing)} of {n} customers differ ({span}) in "
            f"{len(report.days_differing)} days: {rows}.{missed}{partial}")


ROW_HEAD = ["customer", "day", "table", "scorecard", "criterion", "kind", "columns"]


def diff_rows(report: DeepReport, cap: int = DEEP_CAP) -> tuple[list[list[str]], int]:
    shown = report.rows[:cap]
    rows = [[d.customer, d.day.isoformat(), d.table, str(d.scorecard_id),
             "" if d.criterion_id is None else str(d.criterion_id), KIND_TEXT[d.kind] +
             (f" x{d.copies}" if d.kind == "duplicated" else ""), ",".join(d.columns)] for d in shown]
    return rows, len(report.rows) - len(shown)


def _summary_lines(report: DeepReport) -> list[str]:
    lines = [f"Deep check: {report.days_checked:,} customer-days checksummed, {len(report.days_differing):,} "
             f"differ; {report.segments_checked:,} id segments bisected, {report.rows_fetched:,} rows fetched"]
    if report.unnamed_segments:
        lines.append(f"{report.unnamed_segments:,} more differing id segments were not fetched (too many rows "
                     "to read at once): their rows are not listed; verify fewer customers or days to name them")
    if report.rows:
        lines.append("Differing rows: " + kinds_phrase(report.by_kind))
        lines.append("By customer: " + "; ".join(f"{c} ({kinds_phrase(k)})" for c, k in report.per_customer().items()))
    return lines


def deep_text(report: DeepReport, cap: int = DEEP_CAP) -> str:
    counts = report_text(report.counts, cap=cap).splitlines()
    lines = [line for line in counts if not line.startswith("Verdict:")]
    while lines and not lines[-1]:
        lines.pop()
    lines += ["", *_summary_lines(report)]
    if report.rows:
        rows, rest = diff_rows(report, cap)
        lines += ["", table(ROW_HEAD, rows, right={3, 4})]
        if rest:
            lines.append(f"... and {rest:,} more rows (of {len(report.rows):,}); --json lists them all")
        lines += ["", "Differences per day: " + ", ".join(f"{d} {n:,}" for d, n in report.per_day().items())]
    lines += ["", f"Verdict: {deep_verdict(report)}"]
    return "\n".join(lines)


def deep_json(report: DeepReport, cap: int | None = None) -> dict[str, Any]:
    """The count report's JSON, with the deep part: every differing row (or the first `cap`)."""
    doc = report_json(report.counts, cap=cap)
    shown = report.rows if cap is None else report.rows[:cap]
    doc.update({
        "ok": report.ok,
        "verdict": deep_verdict(report),
        "count_verdict": doc["verdict"],
        # what a reader of the stored job (the write-ups) takes as "customers that differ": by content too
        "count_mismatching": doc["mismatching"],
        "mismatching": len(report.customers_differing),
        "mismatching_customers": list(report.customers_differing),
        "deep": {
            "days_checked": report.days_checked,
            "days_differing": [{"customer": c, "day": d.isoformat()} for c, d in report.days_differing],
            "segments_checked": report.segments_checked,
            "rows_fetched": report.rows_fetched,
            "unnamed_segments": report.unnamed_segments,
            "by_kind": report.by_kind,
            "per_customer": report.per_customer(),
            "per_day": {d.isoformat(): n for d, n in report.per_day().items()},
            "rows": [diff_json(d) for d in shown],
            "rows_not_listed": len(report.rows) - len(shown),
            "timings_s": {k: round(v, 3) for k, v in report.timings.items()},
        },
    })
    return doc
