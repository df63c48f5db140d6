"""Verification: Postgres's non-appeal scorecards and scores per customer and day against each
cluster's ClickHouse, and proof that no appeal rows are left there.

One grouped query for Postgres (all customers; run as a few scorecard-id range pieces at once, in
one snapshot) and one per cluster for ClickHouse (both tables in one round trip), run at the same
time; `commands.verify_report` compares them. A `sample:N` first reads each customer's scorecard
count (one more grouped query) to weight the draw.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql

from bot.adapters.clusters import ClusterLookup
from bot.adapters.postgres import utc_midnight
from bot.adapters.sql import ch_source, ch_table
from bot.backfill.source_volumes import SourceVolumes
from bot.config import ShepherdConfig
from bot.errors import UserInputError
from bot.planning import checked_range
from bot.registry import CustomerRegistry
from commands.limits import clip_to_data
from commands.models import CustomerRef, DateRange
from commands.verify_report import DayCount, VerifyReport, compare, report_json, weighted_sample

# Postgres does most of the work: every score of the range is counted (45.8M in the benchmark). Per
# scorecard-id range piece (PG_PIECES of them, one connection each, at the same time), a streaming
# GroupAggregate over the scores(scorecard_id) index counts the scores of each scorecard, and a merge
# join in id order with the scorecards gives them their customer and day: no hash of millions of rows.
# The planner under-estimates the distinct scorecard ids tenfold and would hash them (15-20 s); these
# settings, for the verification's transactions only, keep it on the streaming plan. The pieces are
# the parallelism, so no parallel workers. The pieces cover the table's whole id range: a narrow
# verification (one customer, one day) still counts every score, as the former hash join's scan did.
NARROW_CUSTOMERS = 10
PG_PIECES = 2
PLANNER = {"work_mem": "256MB", "enable_hashjoin": "off", "random_page_cost": "1.1",
           "max_parallel_workers_per_gather": "0"}
STORED_MISMATCHES = 20  # mismatch rows kept with a recorded verification (the counts are all kept)


class VerifyService:
    def __init__(self, config: ShepherdConfig, registry: CustomerRegistry, source_pool: Any,
                 lookup: ClusterLookup, *, concurrent: bool = True,
                 on_verified: Callable[[float], None] | None = None) -> None:
        self.on_verified = on_verified  # each verification's seconds (metrics)
        self.concurrent = concurrent  # False: Postgres, then each cluster in turn (to time each side alone)
        self.config = config
        self.registry = registry
        self.source = source_pool
        self.lookup = lookup
        self.volumes = SourceVolumes(source_pool, config.source, config.appeal_types)

    def range_for(self, start: date | None, end: date | None, today: date) -> DateRange:
        return checked_range(self.config, start, end, today)

    def clipped(self, refs: Sequence[CustomerRef], rng: DateRange) -> tuple[DateRange, str | None]:
        """`rng` narrowed to the days the source holds for `refs`; no such day is a UserInputError."""
        first, last = self.volumes.bounds([r.name for r in refs], rng)
        try:
            return clip_to_data(rng, first, last, "verify")
        except ValueError as err:
            raise UserInputError(str(err)) from None

    def verify(self, customers: tuple[str, ...] | None = None, sample: int | None = None,
               start: date | None = None, end: date | None = None, types: tuple[int, ...] | None = None,
               seed: int | None = None, *, today: date | None = None) -> VerifyReport:
        began = time.perf_counter()
        refs = self.registry.resolve(customers)
        rng, clipped = self.clipped(refs, self.range_for(start, end, today or datetime.now(UTC).date()))
        kinds = tuple(types or self.config.appeal_types)
        population = len(refs)
        timings: dict[str, float] = {}
        if sample is not None:
            if sample < 1:
                raise UserInputError(f"sample:{sample} must pick at least one customer")
            seed = seed if seed is not None else secrets.randbelow(1_000_000)
            t0 = time.perf_counter()
            weights = self.weights(refs, rng)
            timings["sampling"] = time.perf_counter() - t0
            chosen = weighted_sample({r.name: weights.get(r.name, 0) for r in refs}, sample, seed)
            by_name = {r.name: r for r in refs}
            refs = [by_name[n] for n in chosen]
        pg, ch, appeal, side = self.counts(refs, rng, kinds)
        timings.update(side)
        report = compare([r.name for r in refs], pg, ch, appeal, start=rng.start, end=rng.end, types=kinds,
                         sample=sample, population=population, seed=seed if sample is not None else None)
        timings["total"] = time.perf_counter() - began
        if self.on_verified is not None:
            self.on_verified(timings["total"])
        return replace(report, timings=timings, notes=(clipped,) if clipped else ())

    def verify_job(self, kind: str, plan: dict[str, Any]) -> VerifyReport:
        """Verify what a finished backfill or purge job touched: its customers, range and (purge) types."""
        rng = plan.get("range") or {}
        if kind == "purge":
            names = sorted({c["customer"] for cp in plan.get("clusters", ()) for c in cp.get("chunks", ())})
            types = tuple(plan.get("types") or ()) or None
        else:
            names, types = sorted(c["customer"] for c in plan.get("customers", ())), None
        if not names or not rng:
            raise UserInputError(f"the {kind} job's plan names no customers or no range: nothing to verify")
        return self.verify(tuple(names), None, date.fromisoformat(str(rng["start"])),
                           date.fromisoformat(str(rng["end"])), types)

    def counts(self, refs: Sequence[CustomerRef], rng: DateRange, types: Sequence[int]
               ) -> tuple[list[DayCount], list[DayCount], list[DayCount], dict[str, float]]:
        """Both sides at once: Postgres in one thread, each cluster in another (unless not `concurrent`)."""
        by_cluster: dict[str, list[str]] = defaultdict(list)
        for r in refs:
            by_cluster[r.cluster].append(r.name)
        names = [r.name for r in refs]
        with ThreadPoolExecutor(max_workers=1 + len(by_cluster) if self.concurrent else 1) as ex:
            t0 = time.perf_counter()
            pg_future = ex.submit(_timed, self.postgres_counts, names, rng)
            ch_futures: list[Future[tuple[tuple[list[DayCount], list[DayCount]], float]]] = [
                ex.submit(_timed, self.clickhouse_counts, cluster, members, rng, types)
                for cluster, members in sorted(by_cluster.items())
            ]
            pg, pg_s = pg_future.result()
            ch: list[DayCount] = []
            appeal: list[DayCount] = []
            for f in ch_futures:
                (rows, appeal_rows), _ = f.result()
                ch += rows
                appeal += appeal_rows
            ch_times = [f.result()[1] for f in ch_futures]
            ch_s = max(ch_times, default=0.0) if self.concurrent else sum(ch_times)
            wall = time.perf_counter() - t0
        return pg, ch, appeal, {"postgres": pg_s, "clickhouse": ch_s, "both_sides": wall}

    # ---- Postgres ------------------------------------------------------------------------

    def _where(self) -> sql.Composable:
        src = self.config.source
        return sql.SQL(
            "s.{cust} = ANY(%(customers)s) AND s.{created} >= %(lo)s AND s.{created} < %(hi)s"
        ).format(cust=sql.Identifier(src.customer_id), created=sql.Identifier(src.created_at))

    def _params(self, names: Sequence[str], rng: DateRange) -> dict[str, Any]:
        return {"customers": list(names), "lo": utc_midnight(rng.start),
                "hi": utc_midnight(rng.end + timedelta(days=1)), "appeal": list(self.config.appeal_types)}

    def postgres_counts(self, names: Sequence[str], rng: DateRange) -> list[DayCount]:
        """Non-appeal scorecards and their scores per customer and day: one grouped query, run as PG_PIECES
        pieces by scorecard-id range at the same time, all in one exported snapshot (as pg_dump's jobs):
        together they see exactly what the single query would have seen."""
        if not names:
            return []
        params = self._params(names, rng)
        merged: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
        with self.source.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])
            # A few customers: count scores only over their scorecards' id span (cheap through the
            # (customer, created) index); many: over the whole table, not worth a pass to find the span.
            narrow = len(names) <= NARROW_CUSTOMERS
            row = conn.execute(sql.SQL("SELECT min(s.id), max(s.id) FROM {} s{}").format(
                sql.Identifier(self.config.source.scorecards), sql.SQL(" WHERE ") + self._where() if narrow
                else sql.SQL("")), params if narrow else None).fetchone()
            if row is None or row[0] is None:
                return []
            cuts = self._cuts(conn, int(row[0]), int(row[1]) + 1)
            pieces = [{**params, "first": a, "stop": b} for a, b in zip(cuts, cuts[1:], strict=False)]
            with ThreadPoolExecutor(max_workers=max(1, len(pieces) - 1)) as ex:
                others = [ex.submit(self._piece_in_snapshot, snapshot, p) for p in pieces[1:]]
                results = [self._piece(conn, pieces[0]), *(f.result() for f in others)]
        for rows in results:
            for customer, day, cards, scores in rows:
                entry = merged[(str(customer), day.astimezone(UTC).date())]
                entry[0] += int(cards)
                entry[1] += int(scores)
        return [DayCount(c, d, v[0], v[1]) for (c, d), v in merged.items()]

    def _cuts(self, conn: Any, first: int, stop: int) -> list[int]:
        """Piece boundaries: equal shares of the scores by ANALYZE's histogram of scores.scorecard_id (the
        work is counting scores), else equal id ranges. Only the balance depends on it, never the result."""
        row = conn.execute(
            "SELECT histogram_bounds::text::bigint[] FROM pg_stats WHERE schemaname = ANY(current_schemas(false))"
            " AND tablename = %s AND attname = 'scorecard_id' LIMIT 1", (self.config.source.scores,)).fetchone()
        inside = [int(b) for b in (row[0] if row and row[0] else ()) if first < int(b) < stop]
        if len(inside) >= 4 * PG_PIECES:
            middle = {inside[len(inside) * i // PG_PIECES] for i in range(1, PG_PIECES)}
        else:
            middle = {first + (stop - first) * i // PG_PIECES for i in range(1, PG_PIECES)}
        return sorted(middle | {first, stop})

    def _piece_in_snapshot(self, snapshot: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.source.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            return self._piece(conn, params)

    def _piece(self, conn: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One id range: scores counted per scorecard (streaming, over the scores(scorecard_id) index),
        merge-joined in id order to the range's non-appeal scorecards, then grouped by customer and day."""
        src = self.config.source
        ids = {"cust": sql.Identifier(src.customer_id), "created": sql.Identifier(src.created_at),
               "type": sql.Identifier(src.scorecard_type), "cards": sql.Identifier(src.scorecards),
               "scores": sql.Identifier(src.scores)}
        # date_bin from a UTC midnight is the UTC day, in integer arithmetic (no time-zone lookup per row).
        query = sql.SQL(
            "SELECT s.{cust}, date_bin('1 day', s.{created}, %(lo)s), count(*), coalesce(sum(x.n), 0)"
            " FROM {cards} s LEFT JOIN (SELECT scorecard_id, count(*) AS n FROM {scores}"
            "   WHERE scorecard_id >= %(first)s AND scorecard_id < %(stop)s GROUP BY scorecard_id) x"
            " ON x.scorecard_id = s.id"
            " WHERE s.id >= %(first)s AND s.id < %(stop)s AND {where} AND NOT (s.{type} = ANY(%(appeal)s))"
            " GROUP BY 1, 2"
        ).format(where=self._where(), **ids)
        for setting, value in PLANNER.items():
            conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(setting), sql.Literal(value)))
        return list(conn.execute(query, params).fetchall())

    def weights(self, refs: Sequence[CustomerRef], rng: DateRange) -> dict[str, int]:
        """Non-appeal scorecards per customer over the range (what a sample is weighted by)."""
        src = self.config.source
        query = sql.SQL(
            "SELECT s.{cust}, count(*) FROM {cards} s WHERE {where} AND NOT (s.{type} = ANY(%(appeal)s)) GROUP BY 1"
        ).format(cust=sql.Identifier(src.customer_id), cards=sql.Identifier(src.scorecards),
                 type=sql.Identifier(src.scorecard_type), where=self._where())
        with self.source.connection() as conn:
            rows = conn.execute(query, self._params([r.name for r in refs], rng)).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    # ---- ClickHouse ----------------------------------------------------------------------

    def clickhouse_counts(self, cluster: str, names: Sequence[str], rng: DateRange, types: Sequence[int]
                          ) -> tuple[list[DayCount], list[DayCount]]:
        """(non-appeal counts, appeal counts of `types`) per customer and day, in one query for the cluster.

        Non-appeal scores are the day's scores minus those of appeal scorecards, so a score whose
        scorecard is gone also shows up as a difference from Postgres.
        """
        ch = self.lookup.connect(cluster).client
        on_cluster = self.config.cluster(cluster).on_cluster
        cards = ch_table(ch.database, self.config.target.scorecards)  # the IN subqueries: each node's own
        scores = ch_source(ch.database, self.config.target.scores, on_cluster)
        all_cards = ch_source(ch.database, self.config.target.scorecards, on_cluster)
        where = "customer_id IN {customers:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date}"
        appeal_ids = (f"SELECT scorecard_id FROM {cards} WHERE {where} AND scorecard_type IN {{appeal:Array(UInt8)}}")
        types_ids = f"SELECT scorecard_id FROM {cards} WHERE {where} AND scorecard_type IN {{types:Array(UInt8)}}"
        # Three parts, one round trip: scorecards; all scores (read in table order, grouped in order: no
        # hash, no per-row set lookup); and only the scores of appeal scorecards (`IN` in the WHERE lets the
        # primary key skip every granule when there are none, as after a purge).
        query = (
            f"SELECT 0, customer_id, day, countIf(scorecard_type NOT IN {{appeal:Array(UInt8)}}),"
            f" countIf(scorecard_type IN {{types:Array(UInt8)}}) FROM {all_cards} WHERE {where}"
            " GROUP BY customer_id, day"
            f" UNION ALL SELECT 1, customer_id, day, count(), 0 FROM {scores} WHERE {where} GROUP BY customer_id, day"
            f" UNION ALL SELECT 2, customer_id, day, countIf(scorecard_id IN ({appeal_ids})),"
            f" countIf(scorecard_id IN ({types_ids})) FROM {scores} WHERE {where}"
            f" AND (scorecard_id IN ({appeal_ids}) OR scorecard_id IN ({types_ids})) GROUP BY customer_id, day"
            " SETTINGS optimize_aggregation_in_order = 1"
        )
        params = {"customers": list(names), "lo": rng.start, "hi": rng.end,
                  "appeal": list(self.config.appeal_types), "types": list(types)}
        # per (customer, day): scorecards kept, scores, appeal scorecards (types), appeal scores (types);
        # kept scores = all scores - those of appeal scorecards. A sharded cluster answers each shard's rows: summed.
        merged: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for part, customer, day, first, second in ch.query(query, params):
            entry = merged[(str(customer), _as_date(day))]
            if int(part) == 0:
                entry[0] += int(first)
                entry[2] += int(second)
            elif int(part) == 1:
                entry[1] += int(first)
            else:
                entry[1] -= int(first)
                entry[3] += int(second)
        rows = [DayCount(c, d, v[0], v[1]) for (c, d), v in merged.items() if v[0] or v[1]]
        appeal_rows = [DayCount(c, d, v[2], v[3]) for (c, d), v in merged.items() if v[2] or v[3]]
        return rows, appeal_rows

    # ---- recording -----------------------------------------------------------------------

    def record(self, pool: Any, job_id: str, report: VerifyReport, requester: str, channel: str | None,
               linked_job: str | None = None) -> None:
        """Keep the verification as a job of kind `verify` (its report in `plan`), for the write-ups."""
        doc = report_json(report, cap=STORED_MISMATCHES)
        params = {"customers": list(report.customers), "sample": report.sample, "seed": report.seed,
                  "types": list(report.types), "job": linked_job}
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO shepherd.jobs (id, kind, state, requester, channel, plan, params, started_at,"
                " finished_at, error) VALUES (%s, 'verify', %s, %s, %s, %s, %s, now() - %s * interval '1 second',"
                " now(), %s)",
                (job_id, "done" if report.ok else "mismatch", requester, channel, json.dumps(doc),
                 json.dumps(params), report.timings.get("total", 0.0),
                 None if report.ok else doc["verdict"][:500]))


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
