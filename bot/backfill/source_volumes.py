"""Backfill volumes from the source: non-appeal scorecards per customer and day, in Postgres.

Two ways to count, picked once per process from the source's own indexes:

- With an index on (customer_id, created_at) that also carries scorecard_type (as a key or an
  INCLUDE column), each customer-day is one index-only range count: no per-row date arithmetic, no
  hash of millions of rows, and Postgres hands back one array of daily counts per customer. The
  range is split into PIECES date ranges counted at the same time on their own connections. On the
  5M-scorecard benchmark: 1.2-1.5 s, against 3.0 s for the grouped scan in the same run.
- Without it, one grouped query over the table (a sequential scan), which any source can answer.

Both give the same volumes, days in UTC.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import args_row

from bot.adapters.postgres import utc_midnight
from bot.config import SourceTables
from commands.models import DateRange, DayVolume
from commands.schedule import daily_series

PIECES = 2  # concurrent date-range pieces of the per-day count (one source connection each)

_COVERING_INDEX = """
SELECT EXISTS (
  SELECT 1 FROM pg_index i
  JOIN pg_attribute k0 ON k0.attrelid = i.indrelid AND k0.attnum = i.indkey[0]
  JOIN pg_attribute k1 ON k1.attrelid = i.indrelid AND k1.attnum = i.indkey[1]
  WHERE i.indrelid = to_regclass(quote_ident(%(table)s)) AND i.indisvalid AND i.indpred IS NULL
    AND k0.attname = %(customer)s AND k1.attname = %(created)s
    AND EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) AS k(attnum)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE a.attname = %(type)s))
"""


class SourceVolumes:
    def __init__(self, source: Any, tables: SourceTables, appeal_types: Sequence[int]) -> None:
        self.source = source  # psycopg ConnectionPool of the source database
        self.tables = tables
        self.appeal_types = list(appeal_types)
        self._indexed: bool | None = None
        self._lock = threading.Lock()

    def day_series(self, customers: Sequence[str], rng: DateRange) -> dict[str, list[int]]:
        """Each customer's volume on every day of `rng`, zeros included (the planner's input)."""
        if not customers:
            return {}
        if self.indexed():
            return self._series_by_index(customers, rng)
        return daily_series(self.grouped(customers, rng), customers, rng)

    def day_volumes(self, customers: Sequence[str], rng: DateRange) -> list[DayVolume]:
        """The customer-days with volume (the chart's input)."""
        if not customers:
            return []
        if self.indexed():
            days = rng.each_day()
            return [DayVolume(name, days[i], n) for name, counts in self._series_by_index(customers, rng).items()
                    for i, n in enumerate(counts) if n]
        return self.grouped(customers, rng)

    def bounds(self, customers: Sequence[str], rng: DateRange) -> tuple[date | None, date | None]:
        """The first and last day (UTC) in `rng` with non-appeal scorecards of any of `customers`; (None, None)
        when there are none. Per customer two index probes (the first and the last row), not a scan."""
        if not customers:
            return None, None
        query = sql.SQL(
            "SELECT min(f), max(l) FROM unnest(%(customers)s::text[]) AS c(customer) CROSS JOIN LATERAL ("
            " SELECT (SELECT min(s.{created}) FROM {table} s WHERE s.{cust} = c.customer AND s.{created} >= %(lo)s"
            "   AND s.{created} < %(hi)s AND NOT (s.{type} = ANY(%(appeal)s))) AS f,"
            "  (SELECT max(s.{created}) FROM {table} s WHERE s.{cust} = c.customer AND s.{created} >= %(lo)s"
            "   AND s.{created} < %(hi)s AND NOT (s.{type} = ANY(%(appeal)s))) AS l) AS b"
        ).format(**self._names())
        params = {"customers": list(dict.fromkeys(customers)), "lo": utc_midnight(rng.start),
                  "hi": utc_midnight(rng.end + timedelta(days=1)), "appeal": self.appeal_types}
        with self.source.connection() as conn:
            first, last = conn.execute(query, params).fetchone()
        return _utc_day(first), _utc_day(last)

    def indexed(self) -> bool:
        """Whether the source has the index that makes per-day counts index-only (asked once)."""
        with self._lock:
            if self._indexed is None:
                t = self.tables
                params = {"table": t.scorecards, "customer": t.customer_id, "created": t.created_at,
                          "type": t.scorecard_type}
                with self.source.connection() as conn:
                    self._indexed = bool(conn.execute(_COVERING_INDEX, params).fetchone()[0])
            return self._indexed

    def grouped(self, customers: Sequence[str], rng: DateRange) -> list[DayVolume]:
        query = sql.SQL(
            "SELECT {cust}, ({created} AT TIME ZONE 'UTC')::date AS day, count(*) FROM {table}"
            " WHERE {cust} = ANY(%(customers)s) AND {created} >= %(lo)s AND {created} < %(hi)s"
            " AND NOT ({type} = ANY(%(appeal)s)) GROUP BY 1, 2"
        ).format(**self._names())
        params = {"customers": list(customers), "lo": utc_midnight(rng.start),
                  "hi": utc_midnight(rng.end + timedelta(days=1)), "appeal": self.appeal_types}
        with self.source.connection() as conn, conn.cursor(row_factory=args_row(DayVolume)) as cur:
            return cur.execute(query, params).fetchall()

    def _series_by_index(self, customers: Sequence[str], rng: DateRange) -> dict[str, list[int]]:
        customers = list(dict.fromkeys(customers))  # a name asked twice would be counted twice per day
        pieces = _split(rng, PIECES)
        with ThreadPoolExecutor(max_workers=len(pieces)) as pool:
            found = list(pool.map(lambda piece: self._count_days(customers, piece), pieces))
        series: dict[str, list[int]] = {name: [] for name in customers}
        for part in found:  # pieces in date order: each customer's days are appended in order
            for name, counts in part:
                series[name] += counts
        return series

    def _count_days(self, customers: Sequence[str], rng: DateRange) -> list[tuple[str, list[int]]]:
        # One array per customer, built by Postgres: no row per customer-day crosses the wire. Day bounds
        # are UTC midnights: timestamps without a zone, read AT TIME ZONE 'UTC', so the session's time
        # zone (and its DST days of 23 or 25 hours) never shifts a day.
        query = sql.SQL(
            "SELECT c.customer, array_agg(k.n ORDER BY d.day)"
            " FROM unnest(%(customers)s::text[]) AS c(customer)"
            " CROSS JOIN generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 day') AS d(day)"
            " CROSS JOIN LATERAL (SELECT count(*) AS n FROM {table} s WHERE s.{cust} = c.customer"
            "  AND s.{created} >= d.day AT TIME ZONE 'UTC'"
            "  AND s.{created} < (d.day + interval '1 day') AT TIME ZONE 'UTC'"
            "  AND NOT (s.{type} = ANY(%(appeal)s))) AS k"
            " GROUP BY c.customer"
        ).format(**self._names())
        params = {"customers": list(customers), "first": datetime.combine(rng.start, time.min),
                  "last": datetime.combine(rng.end, time.min), "appeal": self.appeal_types}
        with self.source.connection() as conn:
            return [(str(name), list(counts)) for name, counts in conn.execute(query, params).fetchall()]

    def _names(self) -> dict[str, sql.Identifier]:
        t = self.tables
        return {"cust": sql.Identifier(t.customer_id), "created": sql.Identifier(t.created_at),
                "type": sql.Identifier(t.scorecard_type), "table": sql.Identifier(t.scorecards)}


def _utc_day(moment: datetime | None) -> date | None:
    if moment is None:
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _split(rng: DateRange, pieces: int) -> list[DateRange]:
    size = -(-rng.days // max(pieces, 1))
    starts = range(rng.start.toordinal(), rng.end.toordinal() + 1, size)
    return [DateRange(start=date.fromordinal(s), end=date.fromordinal(min(s + size - 1, rng.end.toordinal())))
            for s in starts]
