"""The repair plan: applied to two in-memory stores with differences of every kind on random days, it
leaves ClickHouse equal to Postgres, touches no other day, copies or deletes no more rows than those
days hold, and deletes through the purge only where appeal rows are all that differ."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.deep_report import DaySize, DeepReport
from commands.deep_rows import CardRow, ScoreRow, classify
from commands.grammar import parse
from commands.models import Throughput, WindowPolicy, WindowRule
from commands.repair import findings_hash, plan_json, plan_repair, plan_text, runs
from commands.verify_report import DayCount, compare

START = date(2026, 1, 1)
DAYS = 30
APPEAL = (1, 2, 3)
CLUSTERS = {"hilton": "us", "acme": "eu"}
POLICY = WindowPolicy(rules=(WindowRule(min_daily=0, window_days=4),))
Row = CardRow | ScoreRow


def _store(per_day: int) -> list[Row]:
    rows: list[Row] = []
    for c, customer in enumerate(sorted(CLUSTERS)):
        for d in range(DAYS):
            day = START + timedelta(days=d)
            for i in range(per_day):
                sid = c * 10**6 + d * 1000 + i
                rows.append(CardRow(customer, day, sid, sid + 7, 5, 1_767_225_600 + d * 86_400 + i))
                rows += [ScoreRow(customer, day, sid, k, 0x40A00000 + k) for k in range(2)]
    return rows


def _appeal(row: Row, appeal_cards: set[int]) -> bool:
    return row.scorecard_type in APPEAL if isinstance(row, CardRow) else row.scorecard_id in appeal_cards


def _verify(pg: Sequence[Row], ch: Sequence[Row]) -> DeepReport:
    """What a deep verification that names every row reports on these stores, with the days' sizes."""
    pg_cards = [r for r in pg if isinstance(r, CardRow)]
    ch_cards = [r for r in ch if isinstance(r, CardRow)]
    rows = classify(pg_cards, ch_cards, [r for r in pg if isinstance(r, ScoreRow)],
                    [r for r in ch if isinstance(r, ScoreRow)], APPEAL)
    appeal_ids = {r.scorecard_id for r in ch_cards if r.scorecard_type in APPEAL}

    def counts(side: Sequence[Row], appeal: bool) -> list[DayCount]:
        got: Counter[tuple[str, date, str]] = Counter(
            (r.customer, r.day, type(r).__name__) for r in side if _appeal(r, appeal_ids) == appeal)
        keys = {(c, d) for c, d, _ in got}
        return [DayCount(c, d, got[(c, d, "CardRow")], got[(c, d, "ScoreRow")]) for c, d in keys]

    report = compare(sorted(CLUSTERS), counts(pg, False), counts(ch, False), counts(ch, True),
                     start=START, end=START + timedelta(days=DAYS - 1), types=APPEAL)
    pg_by, ch_by = Counter((r.customer, r.day) for r in pg), Counter((r.customer, r.day) for r in ch)
    differing = tuple(sorted(k for k in pg_by.keys() | ch_by.keys()
                             if Counter(r for r in pg if (r.customer, r.day) == k)
                             != Counter(r for r in ch if (r.customer, r.day) == k)))
    sizes = [DaySize(c, d, sum(isinstance(r, CardRow) for r in pg if (r.customer, r.day) == (c, d)),
                     sum(isinstance(r, ScoreRow) for r in pg if (r.customer, r.day) == (c, d)), ch_by[(c, d)])
             for c, d in differing]
    return DeepReport(report, rows, DAYS * len(CLUSTERS), differing, day_sizes=tuple(sizes))


def _apply(plan_doc: dict[str, object], pg: Sequence[Row], ch: list[Row]) -> list[Row]:
    """What the repair's jobs do: a backfill clears its days and copies Postgres's; a purge deletes the
    appeal rows of its days."""
    out = list(ch)
    for b in plan_doc["backfills"]:  # type: ignore[attr-defined]
        days = {d for a, z in b["windows"] for d in _span(a, z)}
        assert days == set(_span(b["from"], b["to"]))  # the windows cover the run exactly
        gone = {(b["customer"], d) for d in days}
        out = [r for r in out if (r.customer, r.day) not in gone] + [r for r in pg if (r.customer, r.day) in gone]
    for p in plan_doc["purges"]:  # type: ignore[attr-defined]
        purged = {(p["customer"], d) for d in _span(p["from"], p["to"])}
        appeal_ids = {r.scorecard_id for r in out if isinstance(r, CardRow) and r.scorecard_type in APPEAL}
        out = [r for r in out if not ((r.customer, r.day) in purged and _appeal(r, appeal_ids))]
    return out


def _span(a: str, z: str) -> list[date]:
    first, last = date.fromisoformat(a), date.fromisoformat(z)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


EDIT = st.tuples(st.sampled_from(["drop", "dup", "change", "rescore", "appeal", "extra"]),
                 st.sampled_from(sorted(CLUSTERS)), st.integers(0, DAYS - 1), st.integers(0, 4))


@settings(max_examples=80, deadline=None)
@given(edits=st.lists(EDIT, max_size=25))
def test_the_plan_repairs_exactly_the_differing_days_and_no_more(edits: list[tuple[str, str, int, int]]) -> None:
    pg = _store(per_day=5)
    ch = list(pg)
    for what, customer, d, i in edits:
        day = START + timedelta(days=d)
        sid = sorted(CLUSTERS).index(customer) * 10**6 + d * 1000 + i
        card = CardRow(customer, day, sid, sid + 7, 5, 1_767_225_600 + d * 86_400 + i)
        if what == "drop" and card in ch:
            ch.remove(card)
        elif what == "dup":
            ch.append(card)
        elif what == "change" and card in ch:
            ch[ch.index(card)] = replace(card, conversation_id=1)
        elif what == "rescore":  # re-scored in Postgres after the backfill
            old = ScoreRow(customer, day, sid, 0, 0x40A00000)
            if old in pg:
                pg[pg.index(old)] = replace(old, value_bits=0x3F800000)
        elif what in ("appeal", "extra"):
            new = 500 + i + 10 * len(ch)
            ch.append(CardRow(customer, day, sid + new, 1, 2 if what == "appeal" else 5, 1))
            ch.append(ScoreRow(customer, day, sid + new, 0, 0))
    report = _verify(pg, ch)
    plan = plan_repair(report, CLUSTERS, POLICY, Throughput())
    doc = plan_json(plan)
    repaired = _apply(doc, pg, ch)

    assert Counter(repaired) == Counter(pg)  # ClickHouse equals Postgres
    touched = {(c, d) for c, d in plan.pairs}
    assert Counter(r for r in repaired if (r.customer, r.day) not in touched) == Counter(
        r for r in ch if (r.customer, r.day) not in touched)  # no other day changed
    assert set(plan.pairs) == set(report.days_differing)
    assert plan.empty == report.ok and plan.rows_ratio <= 1.0
    for b in plan.backfills:  # runs of one customer never touch: contiguous days are merged
        assert not any(o is not b and o.customer == b.customer and o.start <= b.end + timedelta(days=1)
                       and b.start <= o.end + timedelta(days=1) for o in plan.backfills)
    kinds = {(r.customer, r.day, r.kind) for r in report.rows}
    for p in plan.purges:
        for day in _span(p.start.isoformat(), p.end.isoformat()):
            assert {k for c, d, k in kinds if (c, d) == (p.customer, day)} == {"appeal"}


def test_an_appeal_only_day_is_purged_and_a_changed_day_copied_again_with_numbers() -> None:
    pg = _store(per_day=3)
    day5, day6, day7 = (START + timedelta(days=d) for d in (5, 6, 7))
    # one card and its two scores missing on day 6; an appeal card and score on day 7; an extra card on 5
    ch = [r for r in pg if not (r.customer == "hilton" and r.day == day6 and r.scorecard_id == 1_006_000)]
    ch += [CardRow("hilton", day7, 1_007_999, 1, 1, 1), ScoreRow("hilton", day7, 1_007_999, 0, 0)]
    ch += [CardRow("acme", day5, 5999, 1, 5, 1)]
    report = _verify(pg, ch)
    plan = plan_repair(report, CLUSTERS, POLICY, Throughput())
    assert [(b.customer, b.start, b.end, b.rows, b.kinds) for b in plan.backfills] == [
        ("acme", day5, day5, 9, (("extra", 1),)),
        ("hilton", day6, day6, 9, (("missing", 3),)),
    ]
    assert [(p.customer, p.start, p.scorecards, p.scores) for p in plan.purges] == [("hilton", day7, 1, 1)]
    assert (plan.rows_copied, plan.rows_deleted, plan.rows_in_days) == (18, 2, 10 + 9 + 11)
    text = plan_text(plan)
    assert "copy 18 rows again, delete 2 appeal rows" in text and "needs its approval" in text
    assert "No other day is touched" in text
    commands = [parse(c.split()[0], c.split(" ", 1)[1]) for c in plan_json(plan)["commands"]]
    assert [(type(c).__name__, c.args.customers, c.args.start, c.args.end) for c in commands] == [
        ("BackfillRun", ("acme",), day5, day5), ("BackfillRun", ("hilton",), day6, day6),
        ("PurgeRun", ("hilton",), day7, day7)]
    assert commands[2].args.types == APPEAL and all(c in text for c in plan_json(plan)["commands"])
    assert "One after another for hilton: a job holds its customer's lock until it ends." in text


def test_when_rows_go_unnamed_every_differing_day_is_copied_again() -> None:
    pg = _store(per_day=2)
    day = START + timedelta(days=3)
    report = _verify(pg, [*pg, CardRow("hilton", day, 77, 1, 1, 1)])
    assert plan_repair(report, CLUSTERS, POLICY, Throughput()).purges
    unnamed = replace(report, unnamed_segments=2)
    plan = plan_repair(unnamed, CLUSTERS, POLICY, Throughput())
    assert not plan.purges and [(b.customer, b.start) for b in plan.backfills] == [("hilton", day)]


def test_the_hash_binds_a_plan_to_the_differences_it_was_made_for() -> None:
    pg = _store(per_day=2)
    day = START + timedelta(days=3)
    ch = [*pg, CardRow("hilton", day, 77, 1, 1, 1)]
    report = _verify(pg, ch)
    plan = plan_repair(report, CLUSTERS, POLICY, Throughput())
    again = _verify(pg, list(ch))
    assert findings_hash(again, plan.pairs) == plan.report_hash
    moved = _verify(pg, [*ch, CardRow("hilton", day, 78, 1, 1, 1)])  # data changed since
    assert findings_hash(moved, plan.pairs) != plan.report_hash
    elsewhere = _verify(pg, [*ch, CardRow("acme", day, 78, 1, 1, 1)])  # a new difference on another pair
    assert findings_hash(elsewhere, plan.pairs) == plan.report_hash
    clean = _verify(pg, pg)
    assert plan_repair(clean, CLUSTERS, POLICY, Throughput()).empty
    assert plan_text(plan_repair(clean, CLUSTERS, POLICY, Throughput())).startswith("Nothing to repair")


def test_days_merge_into_runs() -> None:
    d = [START + timedelta(days=i) for i in (0, 1, 2, 5, 7, 8)]
    assert runs(reversed(d)) == [(d[0], d[2]), (d[3], d[3]), (d[4], d[5])]
