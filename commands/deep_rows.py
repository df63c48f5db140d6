"""Naming each differing row, given the rows both sides hold in the fetched segments.

Rows arrive in the canonical form the checksums hash (ids as integers, `created_at` as whole epoch
seconds, `value` as its Float32 bit pattern), so equality here is equality there. A scorecard is keyed by
its id, a score by (scorecard id, criterion id). Postgres's side holds only non-appeal scorecards.
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

KINDS = ("missing", "extra", "changed", "appeal", "duplicated")
KIND_TEXT = {"missing": "missing in ClickHouse", "extra": "extra in ClickHouse", "changed": "changed",
             "appeal": "appeal row present", "duplicated": "duplicated in ClickHouse"}


@dataclass(frozen=True)
class CardRow:
    customer: str
    day: date
    scorecard_id: int
    conversation_id: int
    scorecard_type: int
    created_at: int  # epoch seconds, UTC


@dataclass(frozen=True)
class ScoreRow:
    customer: str
    day: date
    scorecard_id: int
    criterion_id: int
    value_bits: int  # the Float32 bit pattern of `value`

    @property
    def value(self) -> float:
        return float(struct.unpack(">f", struct.pack(">I", self.value_bits))[0])


@dataclass(frozen=True)
class RowDiff:
    table: str  # scorecards | scores
    kind: str  # one of KINDS
    customer: str
    day: date
    scorecard_id: int
    criterion_id: int | None = None
    columns: tuple[str, ...] = ()  # changed: the columns that differ
    postgres: CardRow | ScoreRow | None = None
    clickhouse: CardRow | ScoreRow | None = None
    copies: int = 1  # duplicated: how many copies ClickHouse holds

    def sort_key(self) -> tuple[Any, ...]:
        return (self.customer, self.day, self.scorecard_id, self.table != "scorecards", self.criterion_id or 0,
                KINDS.index(self.kind))


def _columns(a: CardRow | ScoreRow, b: CardRow | ScoreRow) -> tuple[str, ...]:
    names = [f.name for f in fields(a)]
    return tuple("value" if n == "value_bits" else n for n in names if getattr(a, n) != getattr(b, n))


def _key(row: CardRow | ScoreRow) -> tuple[int, int]:
    return (row.scorecard_id, row.criterion_id if isinstance(row, ScoreRow) else -1)


def _compare(table: str, pg: Sequence[Any], ch: Sequence[Any], appeal_ids: Collection[int],
             appeal_types: Collection[int]) -> list[RowDiff]:
    by_key: dict[tuple[int, int], tuple[list[Any], list[Any]]] = defaultdict(lambda: ([], []))
    for r in pg:
        by_key[_key(r)][0].append(r)
    for r in ch:
        by_key[_key(r)][1].append(r)
    out: list[RowDiff] = []
    for (card_id, crit), (p_rows, c_rows) in by_key.items():
        criterion = None if crit < 0 else crit
        p_count, c_count = Counter(p_rows), Counter(c_rows)
        for row, n in c_count.items():
            if row in p_count and n > p_count[row]:
                out.append(RowDiff(table, "duplicated", row.customer, row.day, card_id, criterion,
                                   postgres=row, clickhouse=row, copies=n))
        lost = list((p_count - c_count).elements())
        strange = [r for r in (c_count - p_count).elements() if r not in p_count]
        for p, c in zip(lost, strange, strict=False):
            out.append(RowDiff(table, "changed", p.customer, p.day, card_id, criterion, _columns(p, c), p, c))
        for p in lost[len(strange):]:
            out.append(RowDiff(table, "missing", p.customer, p.day, card_id, criterion, postgres=p))
        for c in strange[len(lost):]:
            if p_rows:  # another copy of a row Postgres holds, and not an equal one
                out.append(RowDiff(table, "duplicated", c.customer, c.day, card_id, criterion,
                                   _columns(p_rows[0], c), p_rows[0], c, copies=len(c_rows)))
                continue
            is_appeal = (card_id in appeal_ids) if table == "scores" else c.scorecard_type in appeal_types
            out.append(RowDiff(table, "appeal" if is_appeal else "extra", c.customer, c.day, card_id, criterion,
                               clickhouse=c))
    return out


def classify(pg_cards: Iterable[CardRow], ch_cards: Iterable[CardRow], pg_scores: Iterable[ScoreRow],
             ch_scores: Iterable[ScoreRow], appeal_types: Collection[int]) -> tuple[RowDiff, ...]:
    """Every row that differs, by kind: missing in ClickHouse, extra in ClickHouse (appeal when it is an
    appeal scorecard or one of its scores), changed (which columns), duplicated (how many copies)."""
    pc, cc = list(pg_cards), list(ch_cards)
    appeal_ids = {c.scorecard_id for c in cc if c.scorecard_type in appeal_types}
    found = _compare("scorecards", pc, cc, appeal_ids, appeal_types) + _compare(
        "scores", list(pg_scores), list(ch_scores), appeal_ids, appeal_types)
    return tuple(sorted(found, key=RowDiff.sort_key))


def row_values(row: CardRow | ScoreRow | None) -> dict[str, Any] | None:
    """A row as JSON values (the Float32 `value` as a number again, `created_at` as epoch seconds)."""
    if row is None:
        return None
    if isinstance(row, ScoreRow):
        return {"customer_id": row.customer, "day": row.day.isoformat(), "scorecard_id": row.scorecard_id,
                "criterion_id": row.criterion_id, "value": row.value}
    return {"customer_id": row.customer, "day": row.day.isoformat(), "scorecard_id": row.scorecard_id,
            "conversation_id": row.conversation_id, "scorecard_type": row.scorecard_type,
            "created_at": row.created_at}


def diff_json(d: RowDiff) -> dict[str, Any]:
    return {"table": d.table, "kind": d.kind, "customer": d.customer, "day": d.day.isoformat(),
            "scorecard_id": d.scorecard_id, "criterion_id": d.criterion_id, "columns": list(d.columns),
            "copies": d.copies, "postgres": row_values(d.postgres), "clickhouse": row_values(d.clickhouse)}
