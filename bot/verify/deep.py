"""Deep verification (`--deep`): the count verification, then row checksums per (customer, day) on both
sides, bisection by scorecard-id range inside each differing day, and the rows of the small differing
segments only, named by kind (`commands.deep_rows`).

Postgres and each cluster work at the same time in every step; the decisions between steps are the
pure `commands.deep_bisect`.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypeVar

from bot.verify.checksums import ClickHouseChecksums, PostgresChecksums
from bot.verify.service import STORED_MISMATCHES, VerifyService
from commands.deep_bisect import (
    EMPTY,
    MAX_FETCHED,
    Checksum,
    DayChecks,
    Segment,
    differing_days,
    merge_adjacent,
    next_round,
    within_budget,
)
from commands.deep_report import DeepReport, deep_json
from commands.deep_rows import CardRow, RowDiff, ScoreRow, classify
from commands.models import DateRange

MAX_ROUNDS = 24  # splits of 16 ways or more: enough for any 64-bit id span
MAX_CHECKS = 20_000  # segments checksummed in one round, at most (the rest are reported as not read)
T = TypeVar("T")
U = TypeVar("U")


class DeepVerifier:
    def __init__(self, service: VerifyService, max_fetched: int = MAX_FETCHED) -> None:
        self.service = service
        self.max_fetched = max_fetched  # rows read (both sides) to name the differences, at most
        self.config = service.config
        self.postgres = PostgresChecksums(service.config, service.source)

    def verify(self, customers: tuple[str, ...] | None = None, sample: int | None = None,
               start: date | None = None, end: date | None = None, types: tuple[int, ...] | None = None,
               seed: int | None = None, *, today: date | None = None) -> DeepReport:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as ex:
            counting = ex.submit(self.service.verify, customers, sample, start, end, types, seed, today=today)
            if sample is None:  # the scope is known now: checksum the days while the counts run
                refs = self.service.registry.resolve(customers)
                asked = self.service.range_for(start, end, today or datetime.now(UTC).date())
                rng, _ = self.service.clipped(refs, asked)  # as the counts do: the days the source holds
                try:
                    found = self._deep(tuple(r.name for r in refs), {r.name: r.cluster for r in refs}, rng)
                finally:
                    counts = counting.result()
            else:  # the sample's draw decides the scope
                counts = counting.result()
                refs = self.service.registry.resolve(counts.customers)
                found = self._deep(counts.customers, {r.name: r.cluster for r in refs},
                                   DateRange(start=counts.start, end=counts.end))
        rows, days, checked, fetched, timings, unnamed = found
        timings.update({"counts": counts.timings.get("total", 0.0), "total": time.perf_counter() - began})
        return DeepReport(counts, rows, days.days, tuple((s.customer, s.day) for s in days.differing), checked,
                          fetched, timings, unnamed)

    def _deep(self, names: tuple[str, ...], clusters: dict[str, str], rng: DateRange
              ) -> tuple[tuple[RowDiff, ...], DayChecks, int, int, dict[str, float], int]:
        """Day checksums, bisection and the rows of the small differing segments."""
        timings: dict[str, float] = {}
        sides = {name: ClickHouseChecksums(self.config, self.service.lookup.connect(name).client)
                 for name in sorted(set(clusters.values()))}

        t0 = time.perf_counter()
        members: dict[str, list[str]] = defaultdict(list)
        for name, cluster in clusters.items():
            members[cluster].append(name)
        pg_days, ch_parts = self._both(
            partial(self.postgres.days, names, rng.start, rng.end),
            {c: partial(sides[c].days, members[c], rng.start, rng.end) for c in sides})
        ch_days = {k: v for part in ch_parts.values() for k, v in part.items()}
        days = differing_days(pg_days, ch_days)
        timings["days"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        step = next_round((s, pg_days.get((s.customer, s.day), EMPTY), ch_days.get((s.customer, s.day), EMPTY))
                          for s in days.differing)
        fetch, sizes, checked = list(step.fetch), list(step.fetch_rows), 0
        left_out = 0  # differing segments not bisected further: the fetch budget is spent, or too many at once
        for _ in range(MAX_ROUNDS):
            if not step.check:
                break
            if sum(sizes) >= self.max_fetched:
                left_out += len(step.check)
                break
            segments = step.check[:MAX_CHECKS]
            left_out += len(step.check) - len(segments)
            checked += len(segments)
            pg_sums, ch_sums = self._both(
                partial(self.postgres.segments, segments),
                {c: partial(_cluster_segments, sides[c], [s for s in segments if clusters[s.customer] == c])
                 for c in sides})
            merged: dict[Segment, Checksum] = {}
            for part in ch_sums.values():
                merged.update(part)
            step = next_round((s, pg_sums[i], merged.get(s, EMPTY)) for i, s in enumerate(segments))
            fetch += step.fetch
            sizes += step.fetch_rows
        else:
            left_out += len(step.check)
        timings["bisect"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        taken, unnamed = within_budget(fetch, sizes, self.max_fetched)
        leaves = merge_adjacent(taken)
        pg_rows, ch_rows = self._both(partial(self.postgres.rows, leaves), {
            c: partial(sides[c].rows, [s for s in leaves if clusters[s.customer] == c]) for c in sides})
        ch_cards: list[CardRow] = [r for cards, _ in ch_rows.values() for r in cards]
        ch_scores: list[ScoreRow] = [r for _, scores in ch_rows.values() for r in scores]
        rows = classify(pg_rows[0], ch_cards, pg_rows[1], ch_scores, self.config.appeal_types)
        timings["rows"] = time.perf_counter() - t0
        fetched = len(pg_rows[0]) + len(pg_rows[1]) + len(ch_cards) + len(ch_scores)
        return rows, days, checked, fetched, timings, len(unnamed) + left_out

    def _both(self, postgres: Callable[[], T], clusters: Mapping[str, Callable[[], U]]) -> tuple[T, dict[str, U]]:
        """Postgres and every cluster at the same time."""
        with ThreadPoolExecutor(max_workers=1 + len(clusters)) as ex:
            pg = ex.submit(postgres)
            futures = {name: ex.submit(fn) for name, fn in clusters.items()}
            return pg.result(), {name: f.result() for name, f in futures.items()}


def _cluster_segments(side: ClickHouseChecksums, mine: Sequence[Segment]) -> dict[Segment, Checksum]:
    return dict(zip(mine, side.segments(mine), strict=True))


def record_deep(pool: Any, job_id: str, report: DeepReport) -> None:
    """Complete a recorded verification (`VerifyService.record`, which keeps the counts) with the deep part:
    its verdict decides the job's state, and the first rows are kept with it."""
    doc = deep_json(report, cap=STORED_MISMATCHES)
    with pool.connection() as conn:
        conn.execute("UPDATE shepherd.jobs SET state = %s, plan = %s, error = %s WHERE id = %s",
                     ("done" if report.ok else "mismatch", json.dumps(doc), None if report.ok else doc["verdict"][:500],
                      job_id))
