"""The repair of a deep verification's findings: the least work that makes ClickHouse equal Postgres on
exactly the (customer, day) pairs that differ, and nothing else.

A backfill window clears its customer's days in ClickHouse before copying them, so a re-backfilled day
comes out equal whatever differed in it (missing, changed, duplicated, extra or appeal rows). A day
whose only differences are appeal rows needs no copy: the purge engine deletes them (with its approval),
which touches far fewer rows. Every other differing day is re-backfilled, contiguous days of a customer
merged into one run and cut into windows by the configured window policy. When the report could not
name every row (segments left unread), no day is known to hold only appeal rows, so every differing day
is re-backfilled.

The plan is bound to the report by a hash of its findings: a repair starts only when a fresh deep
verification of the same pairs finds the same rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from commands.deep_report import DaySize, DeepReport, kinds_phrase
from commands.deep_rows import KINDS, diff_json
from commands.models import CustomerRef, Throughput, WindowPolicy
from commands.render import table
from commands.windows import plan_customer

Pair = tuple[str, date]
APPEAL_TABLES = ("appeal scorecards", "appeal scores")


@dataclass(frozen=True)
class RepairBackfill:
    """One customer's contiguous days, cleared and copied again from Postgres."""

    customer: str
    cluster: str
    start: date
    end: date  # inclusive
    windows: tuple[tuple[date, date], ...]  # the window policy applied to the run
    rows: int  # rows copied (Postgres's scorecards and scores of these days)
    kinds: tuple[tuple[str, int], ...]  # the named differences it repairs, by kind (none: rows not named)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class RepairPurge:
    """One customer's contiguous days whose only differences are appeal rows: deleted by the purge engine."""

    customer: str
    cluster: str
    start: date
    end: date
    scorecards: int
    scores: int

    @property
    def rows(self) -> int:
        return self.scorecards + self.scores


@dataclass(frozen=True)
class RepairPlan:
    report_hash: str
    pairs: tuple[Pair, ...]  # every differing (customer, day): the repair's scope, re-verified after it
    backfills: tuple[RepairBackfill, ...]
    purges: tuple[RepairPurge, ...]
    types: tuple[int, ...]  # the appeal types the purges delete
    rows_in_days: int  # rows of the differing days: Postgres's, or ClickHouse's where it holds more

    @property
    def empty(self) -> bool:
        return not self.backfills and not self.purges

    @property
    def rows_copied(self) -> int:
        return sum(b.rows for b in self.backfills)

    @property
    def rows_deleted(self) -> int:
        return sum(p.rows for p in self.purges)

    @property
    def rows_ratio(self) -> float:
        """Rows the repair copies or deletes over the rows of the differing days (<= 1: never more)."""
        return (self.rows_copied + self.rows_deleted) / self.rows_in_days if self.rows_in_days else 0.0


def repair_commands(plan: RepairPlan) -> tuple[str, ...]:
    """The plan as the commands that carry it out, each with its own locks and (a purge) its approval."""
    types = ",".join(map(str, plan.types))
    return tuple([f"/backfill {b.customer} --from {b.start} --to {b.end}" for b in plan.backfills]
                 + [f"/purge {p.customer} --types {types} --from {p.start} --to {p.end}" for p in plan.purges])


def findings_hash(report: DeepReport, pairs: Iterable[Pair] | None = None) -> str:
    """A hash of what the report found (count mismatches, differing days, every differing row), on `pairs`
    only when given: equal for two verifications that found the same differences there."""
    keep = None if pairs is None else set(pairs)

    def kept(customer: str, day: date) -> bool:
        return keep is None or (customer, day) in keep

    doc = {
        "mismatches": sorted([m.customer, m.day.isoformat(), m.table, m.postgres, m.clickhouse]
                             for m in report.counts.mismatches if kept(m.customer, m.day)),
        "days": sorted([c, d.isoformat()] for c, d in report.days_differing if kept(c, d)),
        "rows": sorted((diff_json(r) for r in report.rows if kept(r.customer, r.day)),
                       key=lambda r: json.dumps(r, sort_keys=True)),
        "unnamed": report.unnamed_segments > 0,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def differing_pairs(report: DeepReport) -> tuple[Pair, ...]:
    """Every (customer, day) that differs by count, by checksum or by a named row."""
    found = {(m.customer, m.day) for m in report.counts.mismatches}
    found |= set(report.days_differing)
    found |= {(r.customer, r.day) for r in report.rows}
    return tuple(sorted(found))


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days merged into contiguous runs (first, last)."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _appeal_only(report: DeepReport) -> set[Pair]:
    if report.unnamed_segments:
        return set()
    kinds: dict[Pair, set[str]] = defaultdict(set)
    for r in report.rows:
        kinds[(r.customer, r.day)].add(r.kind)
    counted: dict[Pair, set[str]] = defaultdict(set)
    for m in report.counts.mismatches:
        counted[(m.customer, m.day)].add(m.table)
    return {p for p, k in kinds.items() if k == {"appeal"} and counted[p] <= set(APPEAL_TABLES)}


def plan_repair(report: DeepReport, clusters: Mapping[str, str], policy: WindowPolicy,
                throughput: Throughput) -> RepairPlan:
    """The repair of `report`'s differences (`report.day_sizes`: each differing day's rows; a day missing
    there holds none in Postgres); `clusters`: each customer's cluster."""
    pairs = differing_pairs(report)
    size = {(s.customer, s.day): s for s in report.day_sizes}
    purge_pairs = _appeal_only(report)
    per_pair: dict[Pair, Counter[str]] = defaultdict(Counter)
    for r in report.rows:
        per_pair[(r.customer, r.day)][r.kind] += 1
    to_copy: dict[str, list[date]] = defaultdict(list)
    to_purge: dict[str, list[date]] = defaultdict(list)
    for customer, day in pairs:
        (to_purge if (customer, day) in purge_pairs else to_copy)[customer].append(day)

    backfills = []
    for customer, days in sorted(to_copy.items()):
        ref = CustomerRef(name=customer, cluster=clusters[customer])
        for first, last in runs(days):
            span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            cards = [_size(size, customer, d).scorecards for d in span]
            planned = plan_customer(ref, span, cards, policy, throughput)
            kinds: Counter[str] = Counter()
            for d in span:
                kinds.update(per_pair[(customer, d)])
            backfills.append(RepairBackfill(
                customer, ref.cluster, first, last, tuple((w["start"], w["end"]) for w in planned["windows"]),
                sum(_size(size, customer, d).postgres for d in span),
                tuple((k, kinds[k]) for k in KINDS if kinds[k])))

    appeal_rows: dict[Pair, Counter[str]] = defaultdict(Counter)
    for r in report.rows:
        if r.kind == "appeal":
            appeal_rows[(r.customer, r.day)][r.table] += 1
    purges = []
    for customer, days in sorted(to_purge.items()):
        for first, last in runs(days):
            span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            purges.append(RepairPurge(customer, clusters[customer], first, last,
                                      sum(appeal_rows[(customer, d)]["scorecards"] for d in span),
                                      sum(appeal_rows[(customer, d)]["scores"] for d in span)))
    in_days = sum(max(_size(size, c, d).postgres, _size(size, c, d).clickhouse) for c, d in pairs)
    return RepairPlan(findings_hash(report, pairs), pairs, tuple(backfills), tuple(purges),
                      report.counts.types, in_days)


def _size(size: Mapping[Pair, DaySize], customer: str, day: date) -> DaySize:
    return size.get((customer, day)) or DaySize(customer, day, 0, 0)


def plan_text(plan: RepairPlan) -> str:
    if plan.empty:
        return "Nothing to repair: the report found no difference."
    lines = [f"Repair of report {plan.report_hash}: {len(plan.pairs):,} customer-days differ; "
             f"copy {plan.rows_copied:,} rows again, delete {plan.rows_deleted:,} appeal rows "
             f"({plan.rows_ratio:.2f} of the {plan.rows_in_days:,} rows of those days). No other day is touched."]
    if plan.backfills:
        rows = [[b.customer, b.cluster, str(b.start), str(b.end), str(b.days), str(len(b.windows)), f"{b.rows:,}",
                 kinds_phrase(dict(b.kinds)) or "checksums or counts differ (rows not named)"]
                for b in plan.backfills]
        lines += ["", "Re-backfill (each day cleared in ClickHouse, then copied from Postgres):",
                  table(["customer", "cluster", "from", "to", "days", "windows", "rows", "repairs"], rows,
                        right={4, 5, 6})]
    if plan.purges:
        rows = [[p.customer, p.cluster, str(p.start), str(p.end), f"{p.scorecards:,}", f"{p.scores:,}"]
                for p in plan.purges]
        lines += ["", f"Purge (appeal types {','.join(map(str, plan.types))}; needs its approval):",
                  table(["customer", "cluster", "from", "to", "scorecards", "scores"], rows, right={4, 5})]
    lines += ["", "Carried out by (each with its own locks; the purge with its approval):",
              *(f"  {c}" for c in repair_commands(plan))]
    runs_of = Counter(b.customer for b in plan.backfills) + Counter(p.customer for p in plan.purges)
    if several := sorted(c for c, n in runs_of.items() if n > 1):
        lines.append(f"One after another for {', '.join(several)}: a job holds its customer's lock until it ends.")
    return "\n".join(lines)


def plan_json(plan: RepairPlan) -> dict[str, Any]:
    return {
        "report_hash": plan.report_hash,
        "pairs": [{"customer": c, "day": d.isoformat()} for c, d in plan.pairs],
        "backfills": [{"customer": b.customer, "cluster": b.cluster, "from": b.start.isoformat(),
                       "to": b.end.isoformat(), "rows": b.rows, "repairs": dict(b.kinds),
                       "windows": [[a.isoformat(), z.isoformat()] for a, z in b.windows]} for b in plan.backfills],
        "purges": [{"customer": p.customer, "cluster": p.cluster, "from": p.start.isoformat(), "to": p.end.isoformat(),
                    "scorecards": p.scorecards, "scores": p.scores} for p in plan.purges],
        "types": list(plan.types),
        "rows_copied": plan.rows_copied,
        "rows_deleted": plan.rows_deleted,
        "rows_in_days": plan.rows_in_days,
        "rows_ratio": round(plan.rows_ratio, 4),
        "commands": list(repair_commands(plan)),
    }
