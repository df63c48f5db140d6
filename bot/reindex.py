"""The reindex pipeline of one backfill window, Postgres to ClickHouse, without Temporal.

Day by day: the day's non-appeal scorecards and their scores are streamed out of Postgres with
`COPY ... TO STDOUT (FORMAT csv)` and into ClickHouse as CSV inserts (no Python object per row).
Before copying, the customer's rows from the resume day to the window's end are deleted from both
ClickHouse tables, so a re-run of any day never doubles rows. `on_progress` is called after each
batch and each day; the Temporal activity turns it into heartbeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql

from bot.adapters.ports import ClickHouse
from bot.adapters.sql import ch_table
from bot.config import ShepherdConfig

CARD_COLUMNS = ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type", "created_at"]
SCORE_COLUMNS = ["customer_id", "day", "scorecard_id", "criterion_id", "value"]
BATCH_BYTES = 16 << 20


@dataclass
class Progress:
    done: int  # conversations reindexed so far in this window (all attempts)
    total: int
    day: date  # the day being copied (resume point)
    scorecards: int = 0
    scores: int = 0


ProgressFn = Callable[[Progress], None]


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


class Reindexer:
    def __init__(self, config: ShepherdConfig, source: Any, ch: ClickHouse) -> None:
        self.config = config
        self.source = source  # psycopg ConnectionPool
        self.ch = ch

    def count_conversations(self, customer: str, start: date, end: date) -> int:
        """The window's total: its non-appeal scorecards (one per conversation)."""
        src = self.config.source
        query = sql.SQL(
            "SELECT count(*) FROM {t} WHERE {c} = %s AND {at} >= %s AND {at} < %s AND NOT ({ty} = ANY(%s))"
        ).format(t=sql.Identifier(src.scorecards), c=sql.Identifier(src.customer_id),
                 at=sql.Identifier(src.created_at), ty=sql.Identifier(src.scorecard_type))
        with self.source.connection() as conn:
            row = conn.execute(
                query, (customer, _midnight(start), _midnight(end + timedelta(days=1)), list(self.config.appeal_types))
            ).fetchone()
        return int(row[0]) if row else 0

    def delete_from(self, customer: str, first: date, end: date) -> None:
        """Remove the customer's rows for [first, end] from both target tables, synchronously."""
        params = {"c": customer, "lo": first, "hi": end}
        for table in (self.config.target.scores, self.config.target.scorecards):
            self.ch.command(
                f"ALTER TABLE {ch_table(self.ch.database, table)} DELETE"
                " WHERE customer_id = {c:String} AND day BETWEEN {lo:Date} AND {hi:Date}"
                " SETTINGS mutations_sync = 2",
                params,
            )

    def copy_day(self, customer: str, day: date, on_batch: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Copy one day's non-appeal scorecards and their scores; returns (scorecards, scores)."""
        src = self.config.source
        ids = {
            "t": sql.Identifier(src.scorecards), "c": sql.Identifier(src.customer_id),
            "at": sql.Identifier(src.created_at), "ty": sql.Identifier(src.scorecard_type),
            "sc": sql.Identifier(src.scores),
        }
        where = sql.SQL(
            "{c} = {cust} AND {at} >= {lo} AND {at} < {hi} AND NOT ({ty} = ANY({appeal}))"
        ).format(
            cust=sql.Literal(customer), lo=sql.Literal(_midnight(day)), hi=sql.Literal(_midnight(day + timedelta(1))),
            appeal=sql.Literal(list(self.config.appeal_types)), **ids,
        )
        cards = sql.SQL(
            "SELECT s.{c}, {day}, s.id, s.conversation_id, s.{ty}, to_char(s.{at} AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD HH24:MI:SS') FROM {t} s WHERE {where}"
        ).format(day=sql.Literal(day), where=where, **ids)
        scores = sql.SQL(
            "SELECT s.{c}, {day}, x.scorecard_id, x.criterion_id, x.value FROM {t} s JOIN {sc} x"
            " ON x.scorecard_id = s.id WHERE {where}"
        ).format(day=sql.Literal(day), where=where, **ids)
        with self.source.connection() as conn:
            n_cards = self._stream(conn, cards, self.config.target.scorecards, CARD_COLUMNS, on_batch)
            n_scores = self._stream(conn, scores, self.config.target.scores, SCORE_COLUMNS, None)
        return n_cards, n_scores

    def _stream(self, conn: Any, select: sql.Composed, table: str, columns: list[str],
                on_batch: Callable[[int], None] | None) -> int:
        rows = 0
        buffer = bytearray()
        query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(select)

        def flush(data: bytes) -> None:
            nonlocal rows
            n = self.ch.insert_csv(table, columns, data)
            rows += n
            if on_batch is not None:
                on_batch(n)

        with conn.cursor().copy(query) as copy:
            for block in copy:
                buffer += block
                if len(buffer) >= BATCH_BYTES:
                    cut = buffer.rfind(b"\n") + 1
                    flush(bytes(buffer[:cut]))
                    del buffer[:cut]
        if buffer:
            flush(bytes(buffer))
        return rows

    def run(self, customer: str, start: date, end: date, *, resume_day: date | None = None, done: int = 0,
            on_progress: ProgressFn | None = None) -> Progress:
        """Reindex [start, end] from `resume_day` (default: start); `done` carries earlier attempts' count."""
        first = resume_day or start
        total = self.count_conversations(customer, start, end)
        if resume_day is None:
            done = 0
        else:
            # Days before the resume day are finished; the resume day itself is redone whole.
            done = self.count_conversations(customer, start, first - timedelta(days=1)) if first > start else 0
        self.delete_from(customer, first, end)
        progress = Progress(done=done, total=total, day=first)
        last_report = time.monotonic()
        day = first
        while day <= end:
            progress.day = day

            def batch(n: int) -> None:
                nonlocal last_report
                progress.done += n
                progress.scorecards += n
                if on_progress is not None and time.monotonic() - last_report > 1.0:
                    on_progress(progress)
                    last_report = time.monotonic()

            _, n_scores = self.copy_day(customer, day, batch)
            progress.scores += n_scores
            progress.day = min(day + timedelta(days=1), end)  # resume after the finished day
            if on_progress is not None:
                on_progress(progress)
                last_report = time.monotonic()
            day += timedelta(days=1)
            if day <= end and self.config.backfill.pause_between_days_s:
                time.sleep(self.config.backfill.pause_between_days_s)
        return progress
