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
from dataclasses import dataclass, replace
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
from commands.deep_report import DaySize, DeepReport, deep_json
from commands.deep_rows import CardRow, RowDiff, ScoreRow, classify
from commands.models import DateRange
from commands.repair import differing_pairs, findings_hash
from commands.verify_report import DayCount, compare

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
        """The count report and the rows that differ. Without a sample, the counts come from the same
        pass: Postgres's day checksums carry its counts, and each cluster's count query (the count path's
        own, `VerifyService.clickhouse_counts`) runs beside its checksums; a sample is drawn and counted
        by `VerifyService.verify` first, as the draw decides the scope."""
        began = time.perf_counter()
        if sample is not None:
            counts = self.service.verify(customers, sample, start, end, types, seed, today=today)
            refs = self.service.registry.resolve(counts.customers)
            found = self._deep(counts.customers, {r.name: r.cluster for r in refs},
                               DateRange(start=counts.start, end=counts.end), None)
        else:
            refs = self.service.registry.resolve(customers)
            asked = self.service.range_for(start, end, today or datetime.now(UTC).date())
            rng, clipped = self.service.clipped(refs, asked)
            kinds = tuple(types or self.config.appeal_types)
            names = tuple(r.name for r in refs)
            found = self._deep(names, {r.name: r.cluster for r in refs}, rng, kinds)
            pg = [DayCount(c, d, v.cards, v.scores) for (c, d), v in found.pg_days.items() if v.cards or v.scores]
            counts = compare(names, pg, found.ch_counts, found.appeal_counts, start=rng.start, end=rng.end,
                             types=kinds)
            counts = replace(counts, notes=(clipped,) if clipped else (), timings={
                **found.side_s, "total": found.timings["days"]})
            if self.service.on_verified is not None:
                self.service.on_verified(time.perf_counter() - began)
        timings = {**found.timings, "total": time.perf_counter() - began}
        differing = tuple((s.customer, s.day) for s in found.days.differing)
        return DeepReport(counts, found.rows, found.days.days, differing, found.checked, found.fetched, timings,
                          found.unnamed, _sizes(differing, found.rows, found.pg_days, found.ch_days))

    def _deep(self, names: tuple[str, ...], clusters: dict[str, str], rng: DateRange,
              kinds: tuple[int, ...] | None) -> _Found:
        """Day checksums (and, with `kinds`, each cluster's counts), bisection, and the rows of the small
        differing segments."""
        timings: dict[str, float] = {}
        sides = {name: ClickHouseChecksums(self.config, self.service.lookup.connect(name).client)
                 for name in sorted(set(clusters.values()))}

        t0 = time.perf_counter()
        members: dict[str, list[str]] = defaultdict(list)
        for name, cluster in clusters.items():
            members[cluster].append(name)

        def cluster_days(cluster: str) -> tuple[dict[tuple[str, date], Checksum], Any, float]:
            began = time.perf_counter()
            sums = sides[cluster].days(members[cluster], rng.start, rng.end)
            counted = (self.service.clickhouse_counts(cluster, members[cluster], rng, kinds)
                       if kinds is not None else ([], []))
            return sums, counted, time.perf_counter() - began

        (pg_days, pg_s), ch_parts = self._both(partial(_timed, self.postgres.days, names, rng.start, rng.end),
                                               {c: partial(cluster_days, c) for c in sides})
        ch_days = {k: v for part, _, _ in ch_parts.values() for k, v in part.items()}
        ch_counts = [r for _, (rows, _), _ in ch_parts.values() for r in rows]
        appeal_counts = [r for _, (_, appeal), _ in ch_parts.values() for r in appeal]
        side_s = {"postgres": pg_s, "clickhouse": max((t for _, _, t in ch_parts.values()), default=0.0)}
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
        return _Found(rows, days, checked, fetched, timings, len(unnamed) + left_out, pg_days, ch_counts,
                      appeal_counts, side_s, ch_days)

    def _both(self, postgres: Callable[[], T], clusters: Mapping[str, Callable[[], U]]) -> tuple[T, dict[str, U]]:
        """Postgres and every cluster at the same time."""
        with ThreadPoolExecutor(max_workers=1 + len(clusters)) as ex:
            pg = ex.submit(postgres)
            futures = {name: ex.submit(fn) for name, fn in clusters.items()}
            return pg.result(), {name: f.result() for name, f in futures.items()}


@dataclass(frozen=True)
class _Found:
    rows: tuple[RowDiff, ...]
    days: DayChecks
    checked: int  # segments checksummed while bisecting
    fetched: int  # rows read
    timings: dict[str, float]
    unnamed: int  # differing segments not read
    pg_days: dict[tuple[str, date], Checksum]
    ch_counts: list[DayCount]  # each cluster's count query (non-appeal), when asked for
    appeal_counts: list[DayCount]
    side_s: dict[str, float]  # seconds of the day pass: Postgres, the slowest cluster
    ch_days: dict[tuple[str, date], Checksum]


def _sizes(differing: Sequence[tuple[str, date]], rows: Sequence[RowDiff], pg_days: Mapping[tuple[str, date], Checksum],
           ch_days: Mapping[tuple[str, date], Checksum]) -> tuple[DaySize, ...]:
    """The rows of every day that differs (by checksum or by a named row), on both sides."""
    pairs = sorted(set(differing) | {(r.customer, r.day) for r in rows})
    return tuple(DaySize(c, d, pg_days.get((c, d), EMPTY).cards, pg_days.get((c, d), EMPTY).scores,
                         ch_days.get((c, d), EMPTY).rows) for c, d in pairs)


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    began = time.perf_counter()
    return fn(*args), time.perf_counter() - began


def _cluster_segments(side: ClickHouseChecksums, mine: Sequence[Segment]) -> dict[Segment, Checksum]:
    return dict(zip(mine, side.segments(mine), strict=True))


def record_deep(pool: Any, job_id: str, report: DeepReport) -> None:
    """Complete a recorded verification (`VerifyService.record`, which keeps the counts) with the deep part:
    its verdict decides the job's state, and the first rows are kept with it."""
    doc = deep_json(report, cap=STORED_MISMATCHES)
    doc["deep"]["repair_hash"] = findings_hash(report, differing_pairs(report))  # what /verify repair checks
    with pool.connection() as conn:
        conn.execute("UPDATE shepherd.jobs SET state = %s, plan = %s, error = %s WHERE id = %s",
                     ("done" if report.ok else "mismatch", json.dumps(doc), None if report.ok else doc["verdict"][:500],
                      job_id))
