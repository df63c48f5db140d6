"""Where deep verification looks: checksums per (customer, day), then per scorecard-id segment inside
a differing day, split until a segment is small enough to fetch its rows.

Both databases compute, for a segment, the count of its scorecards and of their scores and the sum of
a 64-bit hash of each row (every column Shepherd writes, in one canonical text form). Sums are taken
modulo 2**64 (ClickHouse's UInt64 sum wraps, Postgres's numeric sum does not), so equal rows give
equal checksums on both engines, and a duplicated row adds its hash twice (a XOR would cancel it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

MOD = 2**64
FETCH_ROWS = 500  # a differing segment with at most this many rows (either side) is fetched whole
FANOUT = 16  # a larger differing segment is split into at least this many id ranges per round
MAX_FANOUT = 256  # ... and at most this many: enough for pieces of about FETCH_ROWS rows in one round
MAX_FETCHED = 200_000  # rows (both sides) read to name differences; beyond, segments are left unnamed


@dataclass(frozen=True, order=True)
class Segment:
    """Scorecard ids lo <= id < hi of one customer's day."""

    customer: str
    day: date
    lo: int
    hi: int


@dataclass(frozen=True)
class Checksum:
    cards: int = 0
    card_sum: int = 0
    scores: int = 0
    score_sum: int = 0
    lo: int | None = None  # smallest scorecard id seen (cards or scores), for the day's first segment
    hi: int | None = None  # largest

    @property
    def rows(self) -> int:
        return self.cards + self.scores

    def key(self) -> tuple[int, int, int, int]:
        return self.cards, self.card_sum % MOD, self.scores, self.score_sum % MOD

    def same(self, other: Checksum) -> bool:
        return self.key() == other.key()

    def plus(self, other: Checksum) -> Checksum:
        """Two partial checksums of one segment (for example the scorecards' and the scores' queries)."""
        ids = [v for v in (self.lo, self.hi, other.lo, other.hi) if v is not None]
        return Checksum(self.cards + other.cards, (self.card_sum + other.card_sum) % MOD, self.scores + other.scores,
                        (self.score_sum + other.score_sum) % MOD, min(ids) if ids else None,
                        max(ids) if ids else None)


EMPTY = Checksum()


@dataclass(frozen=True)
class Round:
    fetch: tuple[Segment, ...] = ()  # small differing segments: fetch their rows from both sides
    check: tuple[Segment, ...] = ()  # the children of large differing segments: checksum them next
    same: int = 0  # segments whose checksums agreed (no further work)
    fetch_rows: tuple[int, ...] = ()  # rows each `fetch` segment holds (both sides together)


@dataclass(frozen=True)
class DayChecks:
    """The per-day outcome: which (customer, day) differ, and their first segments."""

    differing: tuple[Segment, ...]
    days: int  # (customer, day) pairs seen on either side
    postgres: Mapping[tuple[str, date], Checksum] = field(default_factory=dict)
    clickhouse: Mapping[tuple[str, date], Checksum] = field(default_factory=dict)


def differing_days(postgres: Mapping[tuple[str, date], Checksum],
                   clickhouse: Mapping[tuple[str, date], Checksum]) -> DayChecks:
    """Each (customer, day) whose checksums differ becomes one segment over every id either side holds."""
    out: list[Segment] = []
    keys = postgres.keys() | clickhouse.keys()
    for key in sorted(keys):
        p, c = postgres.get(key, EMPTY), clickhouse.get(key, EMPTY)
        if p.same(c):
            continue
        ids = [v for v in (p.lo, p.hi, c.lo, c.hi) if v is not None]
        lo, hi = (min(ids), max(ids) + 1) if ids else (0, 1)
        out.append(Segment(key[0], key[1], lo, hi))
    return DayChecks(tuple(out), len(keys), postgres, clickhouse)


def split(segment: Segment, parts: int = FANOUT) -> tuple[Segment, ...]:
    """Up to `parts` contiguous, non-empty id ranges covering the segment exactly."""
    width = segment.hi - segment.lo
    n = max(1, min(parts, width))
    cuts = [segment.lo + width * i // n for i in range(n + 1)]
    return tuple(Segment(segment.customer, segment.day, a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a)


def next_round(checked: Iterable[tuple[Segment, Checksum, Checksum]], *, fetch_rows: int = FETCH_ROWS,
               fanout: int = FANOUT) -> Round:
    """Given each segment's checksum on Postgres and on ClickHouse: drop the equal ones, fetch the small
    differing ones (or those a single id wide), split the others: into pieces of about `fetch_rows` rows
    (at least `fanout`, at most MAX_FANOUT of them), so that one more round is usually the last. Every
    round costs one query per side whatever its number of segments, so fewer, wider rounds are faster."""
    fetch: list[tuple[Segment, int]] = []
    check: list[Segment] = []
    same = 0
    for segment, pg, ch in checked:
        if pg.same(ch):
            same += 1
        elif max(pg.rows, ch.rows) <= fetch_rows or segment.hi - segment.lo <= 1:
            fetch.append((segment, pg.rows + ch.rows))
        else:
            rows = max(pg.rows, ch.rows)
            check.extend(split(narrowed(segment, pg, ch), min(MAX_FANOUT, max(fanout, -(-rows // fetch_rows)))))
    fetch.sort()
    return Round(tuple(f[0] for f in fetch), tuple(check), same, tuple(f[1] for f in fetch))


def narrowed(segment: Segment, *sums: Checksum) -> Segment:
    """The segment cut down to the ids its rows hold (on either side), so that one outlying id (say an
    extra row with a far larger id) does not make every split but one empty: rounds follow the rows."""
    ids = [v for c in sums for v in (c.lo, c.hi) if v is not None]
    if not ids:
        return segment
    lo, hi = max(segment.lo, min(ids)), min(segment.hi, max(ids) + 1)
    return Segment(segment.customer, segment.day, lo, hi) if lo < hi else segment


def within_budget(segments: Sequence[Segment], rows: Sequence[int], budget: int = MAX_FETCHED
                  ) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """The segments to fetch, in order, while their rows fit the budget; and those left unnamed (a scope
    with millions of differing rows, such as every appeal row before a cleanup, is named in part)."""
    taken: list[Segment] = []
    total = 0
    for i, (segment, n) in enumerate(zip(segments, rows, strict=True)):
        if total + n > budget and taken:
            return tuple(taken), tuple(segments[i:])
        taken.append(segment)
        total += n
    return tuple(taken), ()


def merge_adjacent(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """Touching segments of one customer's day as one (fewer ranges to fetch)."""
    out: list[Segment] = []
    for s in sorted(segments):
        last = out[-1] if out else None
        if last and (last.customer, last.day) == (s.customer, s.day) and last.hi >= s.lo:
            out[-1] = Segment(s.customer, s.day, last.lo, max(last.hi, s.hi))
        else:
            out.append(s)
    return tuple(out)
