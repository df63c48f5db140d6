"""Row checksums computed inside each database, equal for equal rows on both engines.

Each scorecard's columns become one byte string, and so do each scorecard's scores together (see
PG_SCORES_BYTES), hashed to 64 bits the same way on both sides: Postgres takes
the first 8 bytes of `md5` as a big-endian integer, and ClickHouse's `halfMD5` of one string is exactly
that. The bytes are each integer as 8 big-endian bytes (`int8send`; ClickHouse: the reversed
little-endian bytes of an Int64) and `value` as its 4 Float32 bytes (`float4send`): Postgres `real` and
ClickHouse `Float32` are the same IEEE number but print differently (`-3.4e+38`, `-3.4e38`), so no text.
`created_at` is whole epoch seconds (ClickHouse keeps seconds; the backfill copies seconds). Bytes, not
text, also keep clear of encodings and of the cost of formatting (md5 over text was 4x slower).
The customer and the day are not hashed: they are what the checksums are grouped by, so a row under
another customer or day still moves a sum on both days. Sums are compared modulo 2**64
(`commands.deep_bisect`).

Segments (a customer's day, a scorecard-id range) are sent as arrays and joined inside the database,
so one round of bisection is one query per side, however many segments it checks. Postgres runs its
scorecards' and its scores' query at the same time, in one exported snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from psycopg import sql

from bot.adapters.postgres import utc_midnight
from bot.adapters.sql import ch_table
from bot.config import ShepherdConfig
from bot.verify.service import NARROW_CUSTOMERS, PG_PIECES, PLANNER
from commands.deep_bisect import Checksum, Segment
from commands.deep_rows import CardRow, ScoreRow

PG_HASH = "('x' || substr(md5({bytes}), 1, 16))::bit(64)::bigint"
PG_DAY = "(s.{at} AT TIME ZONE 'UTC')::date"
PG_EPOCH = "floor(extract(epoch FROM s.{at}))::bigint"
# Every NaN as the one NaN: the backfill's CSV says "NaN" for all of them, and ClickHouse reads it as 7fc00000.
PG_VALUE_BYTES = "CASE WHEN x.value = 'NaN'::real THEN '\\x7fc00000'::bytea ELSE float4send(x.value) END"
PG_BITS = f"(('x' || encode({PG_VALUE_BYTES}, 'hex'))::bit(32))::bigint"
PG_CARD_BYTES = f"int8send(s.id) || int8send(s.conversation_id) || int8send(s.{{ty}}::bigint) || int8send({PG_EPOCH})"
# A scorecard's scores are hashed together, once per scorecard (one md5 per scorecard, not per score:
# half the cost), as its id followed by its (criterion, value) byte strings in byte order (memcmp on
# both engines, so ties between equal criteria cannot order differently); grouped by scorecard.
PG_SCORE_ITEM = f"int8send(x.criterion_id::bigint) || {PG_VALUE_BYTES}"
PG_SCORES_BYTES = f"int8send(x.scorecard_id) || string_agg({PG_SCORE_ITEM}, ''::bytea ORDER BY {PG_SCORE_ITEM})"

CH_EPOCH = "toUnixTimestamp(created_at)"
CH_BITS = "if(isNaN(value), 2143289344, reinterpretAsUInt32(value))"  # 0x7fc00000: every NaN as one


def _ch8(column: str) -> str:
    return f"reverse(reinterpretAsFixedString(toInt64({column})))"


CH_CARD_HASH = (f"halfMD5(concat({_ch8('scorecard_id')}, {_ch8('conversation_id')}, {_ch8('scorecard_type')}, "
                f"{_ch8(CH_EPOCH)}))")


def ch_scores_hash(r: str = "") -> str:
    """A scorecard's scores hashed together (an aggregate: group by scorecard id), as PG_SCORES_BYTES."""
    value = f"if(isNaN({r}value), unhex('7FC00000'), reverse(reinterpretAsFixedString({r}value)))"
    item = f"concat({_ch8(r + 'criterion_id')}, {value})"
    return f"halfMD5(concat({_ch8(r + 'scorecard_id')}, arrayStringConcat(arraySort(groupArray({item})))))"


# The segments of one query, as a small table: (i, customer, day, lo, hi).
CH_SEGMENTS = ("(SELECT t.1 AS i, t.2 AS c, t.3 AS d, t.4 AS lo, t.5 AS hi FROM (SELECT arrayJoin(arrayZip("
               "{i:Array(UInt32)}, {c:Array(String)}, {d:Array(Date)}, {lo:Array(UInt64)}, {hi:Array(UInt64)})) AS t))")
PG_SEGMENTS = ("unnest(%(i)s::int[], %(c)s::text[], %(t)s::timestamptz[], %(lo)s::bigint[], %(hi)s::bigint[])"
               " AS g(i, c, t, lo, hi) JOIN {cards} s ON s.id >= g.lo AND s.id < g.hi AND s.{c} = g.c"
               " AND s.{at} >= g.t AND s.{at} < g.t + interval '24 hours'")


def _planned(conn: Any, query: sql.Composed, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    for setting, value in PLANNER.items():
        conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(setting), sql.Literal(value)))
    return list(conn.execute(query, params).fetchall())


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
        expanded = text.replace("{card_hash}", PG_HASH.format(bytes=PG_CARD_BYTES)).replace(
            "{scores_hash}", PG_HASH.format(bytes=PG_SCORES_BYTES)).replace("{day}", PG_DAY).replace(
            "{epoch}", PG_EPOCH).replace("{bits}", PG_BITS).replace("{segments}", PG_SEGMENTS)
        return sql.SQL(expanded).format(**self.ids)

    def _run(self, queries: Sequence[sql.Composed], params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
        return self._run_pieces(None, [params], queries)

    def _run_pieces(self, query: sql.Composed | None, pieces: Sequence[dict[str, Any]],
                    queries: Sequence[sql.Composed] = ()) -> list[list[tuple[Any, ...]]]:
        """One query over several parameter sets, or several queries over one: at the same time, one
        connection each, all in one snapshot (as pg_dump's jobs); with the count path's planner settings."""
        work: list[tuple[sql.Composed, dict[str, Any]]] = (
            [(query, p) for p in pieces] if query is not None else [(q, pieces[0]) for q in queries])
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])
            with ThreadPoolExecutor(max_workers=max(1, len(work) - 1)) as ex:
                others = [ex.submit(self._in_snapshot, snapshot, q, p) for q, p in work[1:]]
                first = _planned(conn, *work[0])
                return [first, *(f.result() for f in others)]

    def _in_snapshot(self, snapshot: str, query: sql.Composed, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            return _planned(conn, query, params)

    def days(self, names: Sequence[str], first: date, last: date) -> dict[tuple[str, date], Checksum]:
        """As the count verification reads (`VerifyService._piece`): per scorecard-id piece, at the same
        time in one snapshot, the scores are summed per scorecard in id order (over the scores(scorecard_id)
        index, no hash of millions of rows), merge-joined to the scope's scorecards, grouped by day."""
        if not names:
            return {}
        params: dict[str, Any] = {"customers": list(names), "lo": utc_midnight(first),
                                  "hi": utc_midnight(last) + _ONE_DAY, "appeal": self.appeal}
        where = "s.{c} = ANY(%(customers)s) AND s.{at} >= %(lo)s AND s.{at} < %(hi)s"
        narrow = len(names) <= NARROW_CUSTOMERS
        with self.pool.connection() as conn:
            span = conn.execute(self._sql("SELECT min(s.id), max(s.id) FROM {cards} s"
                                          + (f" WHERE {where}" if narrow else "")), params).fetchone()
        if span is None or span[0] is None:
            return {}
        lo, stop = int(span[0]), int(span[1]) + 1
        cuts = sorted({lo + (stop - lo) * i // PG_PIECES for i in range(PG_PIECES)} | {stop})
        query = self._sql(
            f"SELECT s.{{c}}, {{day}}, count(*), sum({{card_hash}}), min(s.id), max(s.id), coalesce(sum(x.n), 0),"
            " coalesce(sum(x.h), 0) FROM {cards} s LEFT JOIN (SELECT x.scorecard_id, count(*) AS n,"
            " {scores_hash} AS h FROM {scores} x WHERE x.scorecard_id >= %(first)s AND x.scorecard_id < %(stop)s"
            " GROUP BY x.scorecard_id) x ON x.scorecard_id = s.id"
            f" WHERE s.id >= %(first)s AND s.id < %(stop)s AND {where} AND NOT (s.{{ty}} = ANY(%(appeal)s))"
            " GROUP BY 1, 2")
        pieces = [{**params, "first": a, "stop": b} for a, b in zip(cuts, cuts[1:], strict=False)]
        out: dict[tuple[str, date], Checksum] = {}
        for rows in self._run_pieces(query, pieces):
            for c, d, n, h, first_id, last_id, sn, sh in rows:
                key = (str(c), _day(d))
                out[key] = out.get(key, Checksum()).plus(
                    Checksum(int(n), int(h), int(sn), int(sh), lo=int(first_id), hi=int(last_id)))
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
            self._sql("SELECT g.i, count(*), sum({card_hash}), min(s.id), max(s.id) FROM {segments}" + not_appeal),
            self._sql("SELECT i, sum(n), sum(h) FROM (SELECT g.i, count(*) AS n, {scores_hash} AS h FROM {segments}"
                      " JOIN {scores} x ON x.scorecard_id = s.id WHERE NOT (s.{ty} = ANY(%(appeal)s))"
                      " GROUP BY g.i, x.scorecard_id) z GROUP BY i"),
        ], self._segment_params(segments))
        out = [Checksum() for _ in segments]
        for i, n, h, lo, hi in cards:
            out[i] = out[i].plus(Checksum(int(n), int(h), lo=int(lo), hi=int(hi)))
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
            " SELECT 1, customer_id, day, sum(n), sum(h), min(scorecard_id), max(scorecard_id) FROM"
            f" (SELECT customer_id, day, scorecard_id, count() AS n, {ch_scores_hash()} AS h FROM {self.scores}"
            f" WHERE {where} GROUP BY customer_id, day, scorecard_id) GROUP BY customer_id, day"
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
                "lo": [s.lo for s in segments], "hi": [s.hi for s in segments]}

    def _joined(self, table: str, columns: str) -> str:
        return (f"(SELECT customer_id, day, scorecard_id, {columns} FROM {table}"
                " WHERE (customer_id, day) IN (SELECT t.1, t.2 FROM (SELECT arrayJoin(arrayZip({c:Array(String)},"
                " {d:Array(Date)})) AS t))) AS r"
                f" INNER JOIN {CH_SEGMENTS} AS g ON r.customer_id = g.c AND r.day = g.d"
                " WHERE r.scorecard_id >= g.lo AND r.scorecard_id < g.hi")

    def segments(self, segments: Sequence[Segment]) -> list[Checksum]:
        if not segments:
            return []
        query = (f"SELECT 0, g.i, count(), sum(r.h), min(r.scorecard_id), max(r.scorecard_id)"
                 f" FROM {self._joined(self.cards, CH_CARD_HASH + ' AS h')} GROUP BY g.i UNION ALL"
                 " SELECT 1, i, sum(n), sum(h), min(id), max(id) FROM (SELECT g.i AS i, r.scorecard_id AS id,"
                 f" count() AS n, {ch_scores_hash('r.')} AS h FROM {self._joined(self.scores, 'criterion_id, value')}"
                 " GROUP BY g.i, r.scorecard_id) GROUP BY i")
        out = [Checksum() for _ in segments]
        for part, i, n, h, lo, hi in self.ch.query(query, self._segment_params(segments)):
            one = (Checksum(int(n), int(h), lo=int(lo), hi=int(hi)) if int(part) == 0
                   else Checksum(scores=int(n), score_sum=int(h), lo=int(lo), hi=int(hi)))
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
