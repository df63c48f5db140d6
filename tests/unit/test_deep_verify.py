"""The pure side of `--deep`: bisection decisions, row classification, the report; and the whole loop
over two in-memory tables, which must find exactly the rows that differ however they are spread."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.deep_bisect import (
    EMPTY,
    MOD,
    Checksum,
    Segment,
    differing_days,
    merge_adjacent,
    next_round,
    split,
    within_budget,
)
from commands.deep_report import DeepReport, deep_json, deep_text, deep_verdict
from commands.deep_rows import CardRow, ScoreRow, classify
from commands.verify_report import compare

D = date(2026, 1, 20)
APPEAL = (1, 2, 3)


def card(i: int, kind: int = 5, day: date = D, conversation: int = 7) -> CardRow:
    return CardRow("hilton", day, i, conversation, kind, 1_768_900_000 + i)


def score(i: int, k: int, bits: int = 0x40A00000, day: date = D) -> ScoreRow:
    return ScoreRow("hilton", day, i, k, bits)


def test_split_covers_the_segment_exactly_with_no_empty_part() -> None:
    seg = Segment("a", D, 10, 110)
    parts = split(seg, 16)
    assert parts[0].lo == 10 and parts[-1].hi == 110 and len(parts) == 16
    assert all(a.hi == b.lo for a, b in zip(parts, parts[1:], strict=False))
    assert split(Segment("a", D, 5, 8), 16) == tuple(Segment("a", D, i, i + 1) for i in range(5, 8))


def test_a_round_drops_equal_segments_fetches_small_ones_and_splits_large_ones() -> None:
    small, large, one, same = (Segment("a", D, 0, 100), Segment("a", D, 100, 10_000), Segment("a", D, 7, 8),
                               Segment("b", D, 0, 9))
    big = Checksum(cards=500, card_sum=1, scores=4000, score_sum=2)
    r = next_round([(small, Checksum(3, 1), Checksum(3, 2)), (large, big, replace(big, score_sum=3)),
                    (one, Checksum(300, 1), Checksum(600, 1)), (same, Checksum(3, 1), Checksum(3, 1 + MOD))],
                   fetch_rows=200, fanout=4)
    assert r.fetch == (small, one) and r.same == 1
    assert r.check == split(large, 23)  # 4,500 rows in pieces of about 200: one more round, then fetch
    small_large = next_round([(large, Checksum(10, 1), Checksum(10, 2))], fetch_rows=5, fanout=4)
    assert small_large.check == split(large, 4)  # at least `fanout` pieces


def test_day_segments_span_every_id_either_side_holds() -> None:
    days = differing_days({("a", D): Checksum(2, 5, lo=100, hi=200)}, {("a", D): Checksum(2, 6, lo=50, hi=150),
                                                                          ("b", D): Checksum(1, 1, lo=9, hi=9)})
    assert days.differing == (Segment("a", D, 50, 201), Segment("b", D, 9, 10)) and days.days == 2
    assert differing_days({("a", D): Checksum(2, 5)}, {("a", D): Checksum(2, 5)}).differing == ()


def test_a_split_follows_the_rows_not_an_outlying_id() -> None:
    seg = Segment("a", D, 100, 10**12)
    r = next_round([(seg, Checksum(1000, 1, lo=100, hi=1099), Checksum(1001, 2, lo=100, hi=10**12 - 1))],
                   fetch_rows=100, fanout=4)
    assert r.check == split(seg, 11)  # both ends are held: nothing to cut
    r = next_round([(seg, Checksum(1000, 1, lo=100, hi=1099), Checksum(1000, 2, lo=150, hi=1099))],
                   fetch_rows=100, fanout=4)
    assert r.check == split(Segment("a", D, 100, 1100), 10)


def test_the_rows_read_stay_within_a_budget() -> None:
    segs = [Segment("a", D, i, i + 1) for i in range(5)]
    assert within_budget(segs, [40, 40, 40, 40, 40], budget=100) == (tuple(segs[:2]), tuple(segs[2:]))
    assert within_budget(segs[:1], [500], budget=100) == (tuple(segs[:1]), ())  # at least one is read
    report = replace(_report([card(i) for i in range(3)]), unnamed_segments=4)
    assert "4 more differing id segments were not fetched" in deep_text(report)
    assert deep_verdict(report).endswith("Only part of the rows are named: 4 differing segments were not read.")
    assert deep_json(report)["deep"]["unnamed_segments"] == 4


def test_touching_segments_are_fetched_as_one() -> None:
    assert merge_adjacent([Segment("a", D, 5, 9), Segment("a", D, 0, 5), Segment("b", D, 9, 12)]) == (
        Segment("a", D, 0, 9), Segment("b", D, 9, 12))


def test_every_kind_is_named() -> None:
    pg_cards = [card(1), card(2), card(3), card(4, conversation=8), card(6)]
    ch_cards = [card(2), card(3), card(3), card(4), card(5, kind=2), card(9), card(6, day=date(2026, 1, 21))]
    pg_scores = [score(1, 1), score(2, 1), score(2, 2, bits=1)]
    ch_scores = [score(2, 1), score(2, 1), score(2, 2, bits=2), score(5, 1)]
    got = {(d.table, d.kind, d.scorecard_id, d.criterion_id, d.columns, d.copies)
           for d in classify(pg_cards, ch_cards, pg_scores, ch_scores, APPEAL)}
    assert got == {
        ("scorecards", "missing", 1, None, (), 1),
        ("scorecards", "duplicated", 3, None, (), 2),
        ("scorecards", "changed", 4, None, ("conversation_id",), 1),
        ("scorecards", "appeal", 5, None, (), 1),
        ("scorecards", "extra", 9, None, (), 1),
        ("scorecards", "changed", 6, None, ("day",), 1),  # a row moved to another day is one changed row
        ("scores", "missing", 1, 1, (), 1),
        ("scores", "duplicated", 2, 1, (), 2),
        ("scores", "changed", 2, 2, ("value",), 1),
        ("scores", "appeal", 5, 1, (), 1),
    }


def test_a_second_copy_that_differs_is_a_duplicate_with_its_columns() -> None:
    (d,) = classify([card(1)], [card(1), card(1, conversation=9)], [], [], APPEAL)
    assert (d.kind, d.columns, d.copies) == ("duplicated", ("conversation_id",), 2)


def test_values_come_back_as_the_float32_they_were() -> None:
    assert score(1, 1, bits=0x40A00000).value == 5.0 and score(1, 1, bits=0x80000000).value == -0.0


def _report(rows: Sequence[CardRow], ch_extra: Sequence[CardRow] = ()) -> DeepReport:
    counts = compare(["hilton"], [], [], [], start=D, end=D, types=APPEAL)
    found = classify(rows, [*rows[1:], *ch_extra], [], [], APPEAL)
    return DeepReport(counts, found, 10, (("hilton", D),) if found else (), 3, 20)


def test_the_report_lists_every_row_in_json_and_says_when_only_checksums_saw_it() -> None:
    report = _report([card(i) for i in range(30)])
    doc = deep_json(report)
    assert doc["ok"] is False and len(doc["deep"]["rows"]) == 1 and doc["deep"]["by_kind"] == {"missing": 1}
    assert doc["deep"]["rows"][0]["postgres"]["scorecard_id"] == 0 and doc["deep"]["rows"][0]["clickhouse"] is None
    assert deep_verdict(report).endswith("The counts alone match: only the checksums see these.")
    assert (doc["mismatching"], doc["count_mismatching"], doc["mismatching_customers"]) == (1, 0, ["hilton"])
    many = _report([card(i) for i in range(3)], [card(100 + i) for i in range(30)])
    text = deep_text(many, cap=5)
    assert "... and 26 more rows (of 31); --json lists them all" in text
    assert "Differing rows: missing in ClickHouse 1, extra in ClickHouse 30" in text
    assert deep_json(many, cap=5)["deep"]["rows_not_listed"] == 26
    clean = DeepReport(compare(["hilton"], [], [], [], start=D, end=D, types=APPEAL), (), 10)
    assert clean.ok and deep_text(clean).splitlines()[-1].startswith("Verdict: MATCH: 1 of 1 customers match")


# ---- the whole loop over two in-memory tables -----------------------------------------------------


def _h(row: CardRow | ScoreRow) -> int:
    return int.from_bytes(hashlib.md5(repr(row).encode()).digest()[:8], "big")


def _sum(cards: Sequence[CardRow], scores: Sequence[ScoreRow], seg: Segment) -> Checksum:
    def inside(r: CardRow | ScoreRow) -> bool:
        return (r.customer, r.day) == (seg.customer, seg.day) and seg.lo <= r.scorecard_id < seg.hi
    c = [r for r in cards if inside(r)]
    s = [r for r in scores if inside(r)]
    ids = [r.scorecard_id for r in (*c, *s)]
    return Checksum(len(c), sum(map(_h, c)) % MOD, len(s), sum(map(_h, s)) % MOD, min(ids, default=None),
                    max(ids, default=None))


def _day_sums(cards: Sequence[CardRow]) -> dict[tuple[str, date], Checksum]:
    out: dict[tuple[str, date], Checksum] = {}
    for r in cards:
        key = (r.customer, r.day)
        out[key] = out.get(key, EMPTY).plus(Checksum(1, _h(r), lo=r.scorecard_id, hi=r.scorecard_id))
    return out


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), edits=st.lists(st.tuples(st.sampled_from(["drop", "dup", "change", "appeal"]),
                                                         st.integers(0, 10**6)), max_size=12),
       fetch_rows=st.integers(1, 64), fanout=st.integers(2, 16))
def test_bisection_finds_exactly_the_rows_that_differ(n: int, edits: list[tuple[str, int]], fetch_rows: int,
                                                     fanout: int) -> None:
    pg = [card(3 * i) for i in range(n)]
    ch = list(pg)
    touched: set[int] = set()
    expected: set[tuple[str, int]] = set()
    for what, at in edits:
        i = at % len(pg)
        if i in touched:
            continue
        touched.add(i)
        row = pg[i]
        if what == "drop":
            ch.remove(row)
            expected.add(("missing", row.scorecard_id))
        elif what == "dup":
            ch.append(row)
            expected.add(("duplicated", row.scorecard_id))
        elif what == "change":
            ch[ch.index(row)] = replace(row, conversation_id=99)
            expected.add(("changed", row.scorecard_id))
        else:
            far = 3 * i + 1 if i % 2 else 10**12 + i  # between two others, or far beyond every id
            ch.append(card(far, kind=1))  # an appeal row Postgres never had
            expected.add(("appeal", far))
    days = differing_days(_day_sums(pg), _day_sums(ch))
    step = next_round(((s, _sum(pg, [], s), _sum(ch, [], s)) for s in days.differing),
                      fetch_rows=fetch_rows, fanout=fanout)
    fetch, rounds = list(step.fetch), 0
    while step.check:
        rounds += 1
        step = next_round(((s, _sum(pg, [], s), _sum(ch, [], s)) for s in step.check),
                          fetch_rows=fetch_rows, fanout=fanout)
        fetch += step.fetch
    leaves = merge_adjacent(fetch)

    def rows(side: list[CardRow]) -> list[CardRow]:
        return [r for r in side if any(s.lo <= r.scorecard_id < s.hi for s in leaves)]

    found = classify(rows(pg), rows(ch), [], [], APPEAL)
    assert {(d.kind, d.scorecard_id) for d in found} == expected
    assert len(rows(pg)) + len(rows(ch)) <= len(expected) * 2 * (fetch_rows + 1)  # only small segments read
    assert rounds <= 6  # the rounds follow the rows, not the id span (10**12 wide with an outlier)
