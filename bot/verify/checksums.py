"""Row checksums computed inside each database, equal for equal rows on both engines.

Every column Shepherd writes goes into one canonical text per row, hashed to 64 bits the same way on
both sides: Postgres takes the first 8 bytes of `md5` (over the UTF-8 bytes, whatever the database's
encoding) as a big-endian integer, ClickHouse's `halfMD5` of one string is exactly that. The types are
made to agree first: `created_at` as whole epoch seconds (ClickHouse keeps seconds; the backfill
copies seconds), the day as YYYY-MM-DD (UTC), `value` as its Float32 bit pattern (Postgres `real` and
ClickHouse `Float32` are the same IEEE number, but print differently: `-3.4e+38` and `-3.4e38`).
Sums are compared modulo 2**64 (`commands.deep_bisect`).

Segments (a customer's day, a scorecard-id range) are sent as arrays and joined inside the database,
so one round of bisection is one query per side, however many segments it checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from psycopg import sql

from bot.adapters.postgres import utc_midnight
from bot.adapters.sql import ch_table
from bot.config import ShepherdConfig
from commands.deep_bisect import Checksum, Segment
from commands.deep_rows import CardRow, ScoreRow

PG_HASH = "('x' || substr(md5(convert_to({text}, 'UTF8')), 1, 16))::bit(64)::bigint"
PG_DAY = "(s.{at} AT TIME ZONE 'UTC')::date"
PG_EPOCH = "floor(extract(epoch FROM s.{at}))::bigint"
PG_BITS = "(('x' || encode(float4send(x.value), 'hex'))::bit(32))::bigint"
PG_DAY_TEXT = f"to_char({PG_DAY}, 'YYYY-MM-DD')"
PG_CARD_TEXT = f"concat_ws('|', s.{{c}}, {PG_DAY_TEXT}, s.id, s.conversation_id, s.{{ty}}, {PG_EPOCH})"
PG_SCORE_TEXT = f"concat_ws('|', s.{{c}}, {PG_DAY_TEXT}, x.scorecard_id, x.criterion_id, {PG_BITS})"

CH_EPOCH = "toUnixTimestamp(created_at)"
CH_BITS = "reinterpretAsUInt32(value)"
CH_CARD_HASH = ("halfMD5(concat(customer_id, '|', toString(day), '|', toString(scorecard_id), '|', "
                f"toString(conversation_id), '|', toString(scorecard_type), '|', toString({CH_EPOCH})))")
CH_SCORE_HASH = ("halfMD5(concat(customer_id, '|', toString(day), '|', toString(scorecard_id), '|', "
                 f"toString(criterion_id), '|', toString({CH_BITS})))")
# The segments of one query, as a small table: (i, customer, day, lo, hi).
CH_SEGMENTS = ("(SELECT t.1 AS i, t.2 AS c, t.3 AS d, t.4 AS lo, t.5 AS hi FROM (SELECT arrayJoin(arrayZip("
               "{i:Array(UInt32)}, {c:Array(String)}, {d:Array(Date)}, {lo:Array(UInt64)}, {hi:Array(UInt64)})) AS t))")
PG_SEGMENTS = ("unnest(%(i)s::int[], %(c)s::text[], %(t)s::timestamptz[], %(lo)s::bigint[], %(hi)s::bigint[])"
               " AS g(i, c, t, lo, hi) JOIN {cards} s ON s.id >= g.lo AND s.id < g.hi AND s.{c} = g.c"
               " AND s.{at} >= g.t AND s.{at} < g.t + interval '24 hours'")


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class PostgresChecksums:
    """The truth's side: non-appeal scorecards and their scores, in one snapshot per call."""

    def __init__(self, config: ShepherdConfig, pool: Any) -> None:
        src = config.source
        self.pool = pool
        self.appeal = list(config.appeal_types)
        self.ids = {"c": sql.Identifier(src.customer_id), "at": sql.Identifier(src.created_at),
                    "ty": sql.Identifier(src.scorecard_type), "cards": sql.Identifier(src.scorecards),
                    "scores": sql.Identifier(src.scores)}

    def _sql(self, text: str) -> sql.Composed:
        expanded = text.replace("{card_hash}", PG_HASH.format(text=PG_CARD_TEXT)).replace(
            "{score_hash}", PG_HASH.format(text=PG_SCORE_TEXT)).replace("{day}", PG_DAY).replace(
            "{epoch}", PG_EPOCH).replace("{bits}", PG_BITS).replace("{segments}", PG_SEGMENTS)
        return sql.SQL(expanded).format(**self.ids)

    def _run(self, queries: Sequence[sql.Composed], params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return [list(conn.execute(q, params).fetchall()) for q in queries]

    def days(self, names: Sequence[str], first: date, last: date) -> dict[tuple[str, date], Checksum]:
        where = ("s.{c} = ANY(%(customers)s) AND s.{at} >= %(lo)s AND s.{at} < %(hi)s"
                 " AND NOT (s.{ty} = ANY(%(appeal)s))")
        cards, scores = self._run([
            self._sql(f"SELECT s.{{c}}, {{day}}, count(*), sum({{card_hash}}), min(s.id), max(s.id)"
                      f" FROM {{cards}} s WHERE {where} GROUP BY 1, 2"),
            self._sql(f"SELECT s.{{c}}, {{day}}, count(*), sum({{score_hash}}) FROM {{cards}} s"
                      f" JOIN {{scores}} x ON x.scorecard_id = s.id WHERE {where} GROUP BY 1, 2"),
        ], {"customers": list(names), "lo": utc_midnight(first), "hi": utc_midnight(last) + _ONE_DAY,
            "appeal": self.appeal})
        out = {(str(c), _day(d)): Checksum(int(n), int(h), lo=int(lo), hi=int(hi)) for c, d, n, h, lo, hi in cards}
        for c, d, n, h in scores:
            key = (str(c), _day(d))
            out[key] = out.get(key, Checksum()).plus(Checksum(scores=int(n), score_sum=int(h)))
        return out

    def _segment_params(self, segments: Sequence[Segment]) -> dict[str, Any]:
        return {"i": list(range(len(segments))), "c": [s.customer for s in segments],
                "t": [utc_midnight(s.day) for s in segments], "lo": [s.lo for s in segments],
                "hi": [s.hi for s in segments], "appeal": self.appeal}

    def segments(self, segments: Sequence[Segment]) -> list[Checksum]:
        if not segments:
            return []
        not_appeal = " WHERE NOT (s.{ty} = ANY(%(appeal)s)) GROUP BY g.i"
        cards, scores = self._run([
            self._sql("SELECT g.i, count(*), sum({card_hash}) FROM {segments}" + not_appeal),
            self._sql("SELECT g.i, count(*), sum({score_hash}) FROM {segments}"
                      " JOIN {scores} x ON x.scorecard_id = s.id" + not_appeal),
        ], self._segment_params(segments))
        out = [Checksum() for _ in segments]
        for i, n, h in cards:
            out[i] = out[i].plus(Checksum(int(n), int(h)))
        for i, n, h in scores:
            out[i] = out[i].plus(Checksum(scores=int(n), score_sum=int(h)))
        return out

    def rows(self, segments: Sequence[Segment]) -> tuple[list[CardRow], list[ScoreRow]]:
        if not segments:
            return [], []
        not_appeal = " WHERE NOT (s.{ty} = ANY(%(appeal)s))"
        cards, scores = self._run([
            self._sql("SELECT s.{c}, {day}, s.id, s.conversation_id, s.{ty}, {epoch} FROM {segments}" + not_appeal),
            self._sql("SELECT s.{c}, {day}, x.scorecard_id, x.criterion_id, {bits} FROM {segments}"
                      " JOIN {scores} x ON x.scorecard_id = s.id" + not_appeal),
        ], self._segment_params(segments))
        return ([CardRow(str(c), _day(d), int(i), int(v), int(t), int(e)) for c, d, i, v, t, e in cards],
                [ScoreRow(str(c), _day(d), int(i), int(k), int(b)) for c, d, i, k, b in scores])


class ClickHouseChecksums:
    """One cluster's side: every row its tables hold (appeal rows too: they must not be there)."""

    def __init__(self, config: ShepherdConfig, ch: Any) -> None:
        self.ch = ch
        self.cards = ch_table(ch.database, config.target.scorecards)
        self.scores = ch_table(ch.database, config.target.scores)

    def days(self, names: Sequence[str], first: date, last: date) -> dict[tuple[str, date], Checksum]:
        where = "customer_id IN {customers:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date}"
        query = (
            f"SELECT 0, customer_id, day, count(), sum({CH_CARD_HASH}), min(scorecard_id), max(scorecard_id)"
            f" FROM {self.cards} WHERE {where} GROUP BY customer_id, day UNION ALL"
            f" SELECT 1, customer_id, day, count(), sum({CH_SCORE_HASH}), min(scorecard_id), max(scorecard_id)"
            f" FROM {self.scores} WHERE {where} GROUP BY customer_id, day"
        )
        out: dict[tuple[str, date], Checksum] = {}
        for part, c, d, n, h, lo, hi in self.ch.query(query, {"customers": list(names), "lo": first, "hi": last}):
            key = (str(c), _day(d))
            one = (Checksum(int(n), int(h), lo=int(lo), hi=int(hi)) if int(part) == 0
                   else Checksum(scores=int(n), score_sum=int(h), lo=int(lo), hi=int(hi)))
            out[key] = out.get(key, Checksum()).plus(one)
        return out

    def _segment_params(self, segments: Sequence[Segment]) -> dict[str, Any]:
        return {"i": list(range(len(segments))), "c": [s.customer for s in segments], "d": [s.day for s in segments],
                "lo": [s.lo for s in segments], "hi": [s.hi for s in segments],
                "cs": sorted({s.customer for s in segments}), "ds": sorted({s.day for s in segments})}

    def _joined(self, table: str, columns: str) -> str:
        return (f"(SELECT customer_id, day, scorecard_id, {columns} FROM {table}"
                " WHERE customer_id IN {cs:Array(String)} AND day IN {ds:Array(Date)}) AS r"
                f" INNER JOIN {CH_SEGMENTS} AS g ON r.customer_id = g.c AND r.day = g.d"
                " WHERE r.scorecard_id >= g.lo AND r.scorecard_id < g.hi")

    def segments(self, segments: Sequence[Segment]) -> list[Checksum]:
        if not segments:
            return []
        query = (f"SELECT 0, g.i, count(), sum(r.h) FROM {self._joined(self.cards, CH_CARD_HASH + ' AS h')}"
                 " GROUP BY g.i UNION ALL"
                 f" SELECT 1, g.i, count(), sum(r.h) FROM {self._joined(self.scores, CH_SCORE_HASH + ' AS h')}"
                 " GROUP BY g.i")
        out = [Checksum() for _ in segments]
        for part, i, n, h in self.ch.query(query, self._segment_params(segments)):
            one = Checksum(int(n), int(h)) if int(part) == 0 else Checksum(scores=int(n), score_sum=int(h))
            out[int(i)] = out[int(i)].plus(one)
        return out

    def rows(self, segments: Sequence[Segment]) -> tuple[list[CardRow], list[ScoreRow]]:
        if not segments:
            return [], []
        params = self._segment_params(segments)
        cards = self.ch.query(
            "SELECT r.customer_id, r.day, r.scorecard_id, r.conversation_id, r.scorecard_type, r.epoch FROM "
            + self._joined(self.cards, f"conversation_id, scorecard_type, {CH_EPOCH} AS epoch"), params)
        scores = self.ch.query(
            "SELECT r.customer_id, r.day, r.scorecard_id, r.criterion_id, r.bits FROM "
            + self._joined(self.scores, f"criterion_id, {CH_BITS} AS bits"), params)
        return ([CardRow(str(c), _day(d), int(i), int(v), int(t), int(e)) for c, d, i, v, t, e in cards],
                [ScoreRow(str(c), _day(d), int(i), int(k), int(b)) for c, d, i, k, b in scores])


_ONE_DAY = utc_midnight(date(1970, 1, 2)) - utc_midnight(date(1970, 1, 1))
