"""The reindex pipeline of one backfill window, Postgres to ClickHouse, without Temporal.

Day by day: the day's non-appeal scorecards and their scores are streamed out of Postgres with
`COPY (SELECT ...) TO STDOUT (FORMAT csv)` and into ClickHouse as CSV inserts of `batch_rows`
rows (no Python object per row). The customer's rows from the resume day to the window's end are
first deleted from both ClickHouse tables, so a re-run of any day never doubles rows. The delete and
the inserts run in order on one thread while the reads go on up to INSERT_AHEAD batches ahead (the
first days are read during the delete); memory is bounded by batches, never by the window. Small
days share a batch (a day counts as done, for progress and resuming, once both tables' rows of it
have been inserted), so a window of small days makes few large inserts rather than two per day.
`on_progress` is called as each batch's insert and each day finish; the Temporal activity turns it
into heartbeats.

`raw_copy` is the plain pipeline (one COPY per table, sequential inserts) the benchmark compares
a window against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

from psycopg import sql

from bot.adapters.ports import ClickHouse
from bot.adapters.postgres import utc_midnight
from bot.adapters.shards import ShardedClickHouse
from bot.adapters.sql import ch_table
from bot.backfill.insert_pipeline import InsertPipeline, Then
from bot.config import ShepherdConfig
from bot.errors import UpstreamError

CARD_COLUMNS = ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type", "created_at"]
SCORE_COLUMNS = ["customer_id", "day", "scorecard_id", "criterion_id", "value"]
# How a window clears its days before copying them. Measured on chdb (demo scale 0.03, hilton's
# 1.34M rows in both tables): 51 days, ALTER TABLE ... DELETE with mutations_sync=2 1.1 s vs
# lightweight DELETE FROM 1.6 s; 5 days, 1.1-1.7 s vs 1.0-2.5 s. Same order of cost (once per
# attempt, not per day); a mutation leaves no masked rows behind, so: mutation.
DELETE_MODE = "mutation"
# Batches read ahead of the inserts: memory holds at most INSERT_AHEAD + 1 batches, whatever the window.
# Enough to read on through the window's delete (about a second) at ~150K rows/s in 50K-row batches.
INSERT_AHEAD = 3


@dataclass
class Progress:
    done: int  # conversations reindexed so far in this window (all attempts)
    total: int
    day: date  # the day being copied: where a retried attempt resumes
    done_before_day: int = 0  # `done` when `day` began (a resumed attempt redoes that day whole)
    scorecards: int = 0  # rows written by this attempt
    scores: int = 0


ProgressFn = Callable[[Progress], None]
Shield = Callable[[], AbstractContextManager[Any]]


class _Selects:
    """The COPY queries (identifiers from config, values bound) for one customer and a day range."""

    def __init__(self, config: ShepherdConfig) -> None:
        src = config.source
        self.appeal = list(config.appeal_types)
        ids = {"t": sql.Identifier(src.scorecards), "c": sql.Identifier(src.customer_id),
               "at": sql.Identifier(src.created_at), "ty": sql.Identifier(src.scorecard_type),
               "sc": sql.Identifier(src.scores)}
        where = sql.SQL(
            "s.{c} = %(cust)s AND s.{at} >= %(lo)s AND s.{at} < %(hi)s AND NOT (s.{ty} = ANY(%(appeal)s))"
        ).format(**ids)
        day = sql.SQL("(s.{at} AT TIME ZONE 'UTC')::date").format(**ids)
        self.count = sql.SQL("SELECT count(*) FROM {t} s WHERE {w}").format(w=where, **ids)
        self.cards = sql.SQL(
            "COPY (SELECT s.{c}, {day}, s.id, s.conversation_id, s.{ty},"
            " to_char(s.{at} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM {t} s WHERE {w}) TO STDOUT (FORMAT csv)"
        ).format(day=day, w=where, **ids)
        self.scores = sql.SQL(
            "COPY (SELECT s.{c}, {day}, x.scorecard_id, x.criterion_id, x.value FROM {t} s JOIN {sc} x"
            " ON x.scorecard_id = s.id WHERE {w}) TO STDOUT (FORMAT csv)"
        ).format(day=day, w=where, **ids)

    def params(self, customer: str, first: date, last: date) -> dict[str, Any]:
        return {"cust": customer, "lo": utc_midnight(first), "hi": utc_midnight(last + timedelta(days=1)),
                "appeal": self.appeal}


class _Batcher:
    """One table's COPY rows on their way to the pipeline: a batch goes each `batch_rows` rows, across
    days; `flush` hands on the rest."""

    def __init__(self, pipe: InsertPipeline, insert: Callable[[bytes], int], batch_rows: int, on_batch: Then) -> None:
        self.pipe, self.insert, self.batch_rows, self.on_batch = pipe, insert, batch_rows, on_batch
        self.buffer, self.lines = bytearray(), 0

    def read(self, conn: Any, query: sql.Composed, params: dict[str, Any]) -> None:
        with conn.cursor().copy(query, params) as copy:
            for block in copy:
                self.buffer += block
                self.lines += 1  # libpq hands over COPY data one whole row at a time
                if self.lines >= self.batch_rows:
                    self.flush()

    def flush(self) -> None:
        if self.buffer:
            batch, self.buffer, self.lines = bytes(self.buffer), bytearray(), 0
            self.pipe.submit(partial(self.insert, batch), self.on_batch)


class Reindexer:
    def __init__(self, config: ShepherdConfig, source: Any, ch: ClickHouse, *, batch_rows: int | None = None,
                 delete_mode: str = DELETE_MODE, shield: Shield = nullcontext) -> None:
        if isinstance(ch, ShardedClickHouse):  # refused before its delete: it could not insert the rows back
            raise UpstreamError(f"cluster {ch.cluster} is sharded: Shepherd does not backfill into it")
        self.config = config
        self.source = source  # psycopg ConnectionPool
        self.ch = ch
        self.batch_rows = batch_rows or config.backfill.batch_rows
        self.delete_mode = delete_mode
        self.shield = shield  # keeps a cancellation out of the wait for an in-flight insert
        self.selects = _Selects(config)

    def count_conversations(self, customer: str, start: date, end: date) -> int:
        """The window's total, in one query: its non-appeal scorecards (one per conversation)."""
        with self.source.connection() as conn:
            row = conn.execute(self.selects.count, self.selects.params(customer, start, end)).fetchone()
        return int(row[0]) if row else 0

    def delete_from(self, customer: str, first: date, end: date) -> None:
        """Remove the customer's rows for [first, end] from both target tables, synchronously."""
        where = " WHERE customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
        for table in (self.config.target.scores, self.config.target.scorecards):
            name = ch_table(self.ch.database, table)
            if self.delete_mode == "lightweight":
                self.ch.command(f"DELETE FROM {name}{where}", {"c": customer, "lo": first, "hi": end})
            else:
                self.ch.command(f"ALTER TABLE {name} DELETE{where} SETTINGS mutations_sync = 2",
                                {"c": customer, "lo": first, "hi": end})

    def _batcher(self, pipe: InsertPipeline, table: str, columns: Sequence[str], on_batch: Then) -> _Batcher:
        return _Batcher(pipe, partial(self.ch.insert_csv, table, columns), self.batch_rows, on_batch)

    def run(self, customer: str, start: date, end: date, *, resume_day: date | None = None, done_before: int = 0,
            total: int | None = None, on_progress: ProgressFn | None = None) -> Progress:
        """Reindex [start, end] from `resume_day` (default: start).

        `done_before` is how many conversations earlier attempts finished before `resume_day` (from
        their heartbeat); `total` is the window's count when the caller already has it. The delete and
        the inserts run in order behind the reads (`InsertPipeline`); progress moves as they finish.
        """
        first = max(resume_day or start, start)
        if total is None:
            total = self.count_conversations(customer, start, end)
        progress = Progress(done=done_before if resume_day else 0, total=total, day=first)
        progress.done_before_day = progress.done
        if first > end:
            return progress
        pause = self.config.backfill.pause_between_days_s

        def cards(n: int) -> None:
            progress.done += n
            progress.scorecards += n
            if on_progress is not None:
                on_progress(progress)

        def scores(n: int) -> None:
            progress.scores += n

        def day_done(day: date) -> Then:
            def then(_: Any) -> None:
                if day < end:  # resume after the finished day; the last day stays the resume point
                    progress.day, progress.done_before_day = day + timedelta(days=1), progress.done
                if on_progress is not None:
                    on_progress(progress)
            return then

        target, days = self.config.target, list[date]()
        with self.source.connection() as conn, InsertPipeline(INSERT_AHEAD, self.shield) as pipe:
            pipe.submit(partial(self.delete_from, customer, first, end))  # the first days are read meanwhile
            batchers = (self._batcher(pipe, target.scorecards, CARD_COLUMNS, cards),
                        self._batcher(pipe, target.scores, SCORE_COLUMNS, scores))
            day = first
            while day <= end:
                params = self.selects.params(customer, day, day)
                for batcher, query in zip(batchers, (self.selects.cards, self.selects.scores), strict=True):
                    batcher.read(conn, query, params)
                days.append(day)
                # Small days share batches: a day counts as done once both tables' rows of it are handed on.
                if day == end or pause or sum(b.lines for b in batchers) >= self.batch_rows:
                    for batcher in batchers:
                        batcher.flush()
                    for d in days:
                        pipe.mark(day_done(d))
                    days.clear()
                day += timedelta(days=1)
                if day <= end and pause:
                    pipe.drain()
                    time.sleep(pause)
        return progress


def raw_copy(config: ShepherdConfig, source: Any, ch: ClickHouse, customer: str, start: date, end: date,
             tables: tuple[str, str], batch_rows: int | None = None) -> tuple[int, int]:
    """The plain pipeline: one COPY per table for the whole range, batches inserted one after another.

    No delete, no per-day split, no progress, no overlap: what a window is measured against.
    `tables` are the (scorecards, scores) tables to write.
    """
    selects, rows = _Selects(config), batch_rows or config.backfill.batch_rows
    params = selects.params(customer, start, end)
    counts = []
    with source.connection() as conn:
        for query, table, columns in ((selects.cards, tables[0], CARD_COLUMNS), (selects.scores, tables[1],
                                                                                   SCORE_COLUMNS)):
            written, buffer, lines = 0, bytearray(), 0
            with conn.cursor().copy(query, params) as copy:
                for block in copy:
                    buffer += block
                    lines += 1
                    if lines >= rows:
                        written += ch.insert_csv(table, columns, bytes(buffer))
                        buffer, lines = bytearray(), 0
            if buffer:
                written += ch.insert_csv(table, columns, bytes(buffer))
            counts.append(written)
    return counts[0], counts[1]
