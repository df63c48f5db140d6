"""What `/verify` decides, given the counts both sides returned: which customers and days differ, the
verdict, the capped mismatch table, and which customers a seeded `sample:N` picks.

Postgres holds the truth: its non-appeal scorecards (and their scores) per customer and day. ClickHouse
must hold exactly those, and no appeal rows at all (types from `--types`, default the configured ones).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from commands.render import table

TABLES = ("scorecards", "scores", "appeal scorecards", "appeal scores")
DEFAULT_CAP = 20


@dataclass(frozen=True)
class DayCount:
    customer: str
    day: date
    scorecards: int
    scores: int


@dataclass(frozen=True)
class Mismatch:
    customer: str
    day: date
    table: str  # one of TABLES
    postgres: int  # for the appeal tables: what must be there, 0
    clickhouse: int

    @property
    def difference(self) -> int:
        return self.clickhouse - self.postgres


@dataclass(frozen=True)
class Totals:
    postgres_scorecards: int = 0
    postgres_scores: int = 0
    clickhouse_scorecards: int = 0
    clickhouse_scores: int = 0
    appeal_scorecards: int = 0
    appeal_scores: int = 0


@dataclass(frozen=True)
class VerifyReport:
    start: date
    end: date
    types: tuple[int, ...]
    customers: tuple[str, ...]  # every customer checked
    mismatches: tuple[Mismatch, ...]  # all of them, by customer, day, table
    totals: Totals = Totals()
    sample: int | None = None  # N of sample:N
    population: int = 0  # customers the sample was drawn from
    seed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: postgres, clickhouse, total
    notes: tuple[str, ...] = ()  # said beside the report, e.g. the range clipped to the days with data

    @property
    def mismatching(self) -> tuple[str, ...]:
        return tuple(sorted({m.customer for m in self.mismatches}))

    @property
    def matching(self) -> int:
        return len(self.customers) - len(self.mismatching)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def appeal_customers(self) -> tuple[str, ...]:
        return tuple(sorted({m.customer for m in self.mismatches if m.table.startswith("appeal")}))

    @property
    def count_customers(self) -> tuple[str, ...]:
        return tuple(sorted({m.customer for m in self.mismatches if not m.table.startswith("appeal")}))


def compare(
    customers: Sequence[str],
    postgres: Iterable[DayCount],
    clickhouse: Iterable[DayCount],
    appeal: Iterable[DayCount],
    *,
    start: date,
    end: date,
    types: Sequence[int],
    sample: int | None = None,
    population: int = 0,
    seed: int | None = None,
) -> VerifyReport:
    """Day by day: Postgres's non-appeal counts against ClickHouse's; any appeal row in ClickHouse differs."""
    wanted = set(customers)
    pg = {(c.customer, c.day): c for c in postgres if c.customer in wanted}
    ch = {(c.customer, c.day): c for c in clickhouse if c.customer in wanted}
    ap = [c for c in appeal if c.customer in wanted]
    found: list[Mismatch] = []
    for key in pg.keys() | ch.keys():
        p, c = pg.get(key), ch.get(key)
        for name in ("scorecards", "scores"):
            want = getattr(p, name) if p else 0
            got = getattr(c, name) if c else 0
            if want != got:
                found.append(Mismatch(key[0], key[1], name, want, got))
    for a in ap:
        if a.scorecards:
            found.append(Mismatch(a.customer, a.day, "appeal scorecards", 0, a.scorecards))
        if a.scores:
            found.append(Mismatch(a.customer, a.day, "appeal scores", 0, a.scores))
    found.sort(key=lambda m: (m.customer, m.day, TABLES.index(m.table)))
    totals = Totals(
        postgres_scorecards=sum(c.scorecards for c in pg.values()),
        postgres_scores=sum(c.scores for c in pg.values()),
        clickhouse_scorecards=sum(c.scorecards for c in ch.values()),
        clickhouse_scores=sum(c.scores for c in ch.values()),
        appeal_scorecards=sum(a.scorecards for a in ap),
        appeal_scores=sum(a.scores for a in ap),
    )
    return VerifyReport(start, end, tuple(types), tuple(customers), tuple(found), totals, sample, population, seed)


# ---- sampling -------------------------------------------------------------------------------


def _uniform(seed: int, name: str) -> float:
    """A number in (0, 1) fixed by the seed and the name alone, so a sample does not depend on order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def weighted_sample(weights: Mapping[str, int], n: int, seed: int) -> tuple[str, ...]:
    """N names without replacement, each drawn with probability proportional to its weight
    (Efraimidis-Spirakis: the N largest u ** (1 / w)); a weight under 1 counts as 1, so a customer with
    no rows can still be drawn. Largest first."""
    keyed = sorted(weights, key=lambda name: (-math.log(_uniform(seed, name)) / max(weights[name], 1), name))
    chosen = keyed[:n]
    return tuple(sorted(chosen, key=lambda name: (-weights[name], name)))


# ---- output ---------------------------------------------------------------------------------


def types_text(types: Sequence[int]) -> str:
    """(1, 2, 3, 5) -> "1-3,5"."""
    parts: list[str] = []
    ordered = sorted(set(types))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def verdict(report: VerifyReport) -> str:
    kinds = types_text(report.types)
    span = f"{report.start} to {report.end}"
    n = len(report.customers)
    if report.ok:
        return (f"MATCH: {n} of {n} customers match Postgres day by day ({span}); "
                f"no appeal rows (types {kinds}) in ClickHouse.")
    parts = []
    if report.count_customers:
        parts.append(f"{len(report.count_customers)} with counts that differ from Postgres")
    if report.appeal_customers:
        parts.append(f"{len(report.appeal_customers)} with appeal rows (types {kinds}) still in ClickHouse")
    return f"MISMATCH: {len(report.mismatching)} of {n} customers differ ({span}): {'; '.join(parts)}."


def mismatch_rows(report: VerifyReport, cap: int = DEFAULT_CAP) -> tuple[list[list[str]], int]:
    """The first `cap` mismatches as table rows, and how many were left out."""
    shown = report.mismatches[:cap]
    rows = [[m.customer, m.day.isoformat(), m.table, f"{m.postgres:,}", f"{m.clickhouse:,}", f"{m.difference:+,}"]
            for m in shown]
    return rows, len(report.mismatches) - len(shown)


MISMATCH_HEAD = ["customer", "day", "table", "postgres", "clickhouse", "difference"]


def per_customer(report: VerifyReport) -> list[str]:
    """One phrase per mismatching customer: how many days differ, and whether appeal rows remain."""
    days: dict[str, set[date]] = {}
    appeal: dict[str, int] = {}
    for m in report.mismatches:
        if m.table.startswith("appeal"):
            appeal[m.customer] = appeal.get(m.customer, 0) + m.clickhouse
        else:
            days.setdefault(m.customer, set()).add(m.day)
    out = []
    for name in report.mismatching:
        bits = []
        if name in days:
            bits.append(f"{len(days[name])} day{'s' if len(days[name]) != 1 else ''} differ")
        if name in appeal:
            bits.append(f"{appeal[name]:,} appeal rows")
        out.append(f"{name} ({', '.join(bits)})")
    return out


def sample_line(report: VerifyReport) -> str | None:
    if report.sample is None:
        return None
    return (f"Sample: {len(report.customers)} of {report.population} customers, drawn at random weighted by "
            f"volume, seed {report.seed} (repeat it with --seed {report.seed})")


def report_text(report: VerifyReport, cap: int = DEFAULT_CAP) -> str:
    t = report.totals
    lines = [
        f"Verification: {len(report.customers)} customers, {report.start} to {report.end}, "
        f"appeal types {types_text(report.types)}",
    ]
    if (s := sample_line(report)) is not None:
        lines.append(s)
    lines += [
        f"Checked: {len(report.customers)} · matching: {report.matching} · mismatching: {len(report.mismatching)}",
        f"Postgres: {t.postgres_scorecards:,} scorecards, {t.postgres_scores:,} scores · "
        f"ClickHouse: {t.clickhouse_scorecards:,} scorecards, {t.clickhouse_scores:,} scores · "
        f"appeal rows in ClickHouse: {t.appeal_scorecards:,} scorecards, {t.appeal_scores:,} scores",
    ]
    if report.mismatches:
        rows, rest = mismatch_rows(report, cap)
        lines += ["", "Mismatching: " + "; ".join(per_customer(report)), "",
                  table(MISMATCH_HEAD, rows, right={3, 4, 5})]
        if rest:
            lines.append(f"... and {rest:,} more rows (of {len(report.mismatches):,}); --json lists them all")
    lines += ["", f"Verdict: {verdict(report)}"]
    return "\n".join(lines)


def report_json(report: VerifyReport, cap: int | None = None) -> dict[str, Any]:
    """The report as JSON; with `cap`, at most that many mismatch rows (the rest are counted)."""
    shown = report.mismatches if cap is None else report.mismatches[:cap]
    return {
        "ok": report.ok,
        "verdict": verdict(report),
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "types": list(report.types),
        "checked": len(report.customers),
        "matching": report.matching,
        "mismatching": len(report.mismatching),
        "mismatching_customers": list(report.mismatching),
        "appeal_customers": list(report.appeal_customers),
        "customers": list(report.customers),
        "sample": report.sample,
        "population": report.population or None,
        "seed": report.seed,
        "totals": vars(report.totals),
        "mismatches": [
            {"customer": m.customer, "day": m.day.isoformat(), "table": m.table, "postgres": m.postgres,
             "clickhouse": m.clickhouse, "difference": m.difference}
            for m in shown
        ],
        "mismatches_not_listed": len(report.mismatches) - len(shown),
        "timings_s": {k: round(v, 3) for k, v in report.timings.items()},
    }
