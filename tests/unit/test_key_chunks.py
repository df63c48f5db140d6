"""Key-range chunk planning: the fewest mutations, every one under the cap, in a safe order."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest

from commands.key_chunks import Cut, TableDays, TableKey, cuts_needed, lower_bound, plan_key_range_purge, runs
from commands.models import CustomerRef, DateRange, PurgePolicy

JAN = date(2026, 1, 1)
KEYS = {("c1", "scorecards"): TableKey(("day", "scorecard_id"), ("Date", "UInt64")),
        ("c1", "scores"): TableKey(("day", "scorecard_id", "criterion_id"), ("Date", "UInt64", "UInt32"))}


def test_runs_reach_the_lower_bound_where_day_packing_cannot() -> None:
    # oportun-like: every day between 2,331 and 3,599 rows, so no two days fit under 4,000
    rng = random.Random(7)
    rows = [rng.randint(2_331, 3_599) for _ in range(31)]
    cut = runs(rows, 4_000)
    assert len(cut) == math.ceil(sum(rows) / 4_000) < len(rows)
    assert sum(r.rows for r in cut) == sum(rows) and all(r.rows <= 4_000 for r in cut)
    for a, b in zip(cut, cut[1:], strict=False):
        if b.lo is not None:  # a cut inside a day: the run ends and the next starts on the same day
            assert a.last == b.first and a.hi == b.lo
        else:
            assert a.hi is None and b.first > a.last


def test_runs_cut_on_day_boundaries_need_no_key_and_skip_empty_days() -> None:
    assert runs([2, 0, 2, 0, 0, 4], 2) == [(0, 0, 2, None, None), (2, 2, 2, None, None), (5, 5, 2, None, 2),
                                            (5, 5, 2, 2, None)]
    assert runs([], 5) == [] and runs([0, 0], 5) == []
    with pytest.raises(ValueError, match="negative"):
        runs([1, -1], 5)


def _entries() -> list[TableDays]:
    days = [JAN + timedelta(d) for d in range(5)]
    feb = [date(2026, 2, 1), date(2026, 2, 2)]
    return [
        TableDays("c1", "acme", "scorecards", "202601", days, [1, 1, 1, 1, 1]),
        TableDays("c1", "acme", "scores", "202601", days, [3, 3, 3, 3, 3]),
        TableDays("c1", "acme", "scores", "202602", feb, [3, 0]),
        TableDays("c1", "acme", "scorecards", "202602", feb, [1, 0]),
    ]


def _plan(cap: int) -> tuple[list[Cut], object]:
    entries = _entries()
    cuts = cuts_needed(entries, cap)
    cut_keys = {c: (c.day.isoformat(), str(100 + c.offset)) for c in cuts}
    plan = plan_key_range_purge(entries, KEYS, cut_keys, [CustomerRef(name="acme", cluster="c1")],
                                DateRange(start=JAN, end=date(2026, 2, 28)), (3, 1),
                                PurgePolicy(max_rows_per_mutation=cap))
    return cuts, plan


def test_plan_has_the_lower_bound_per_partition_and_names_partition_and_key_range() -> None:
    cuts, plan = _plan(4)
    chunks = plan.clusters[0].chunks  # type: ignore[attr-defined]
    assert plan.mutations_lower_bound == lower_bound(_entries(), 4) == len(chunks) == 2 + 4 + 1 + 1  # type: ignore[attr-defined]
    assert all(c.rows <= 4 for c in chunks) and {c.partition for c in chunks} == {"202601", "202602"}
    jan_scores = [c for c in chunks if c.table == "scores" and c.partition == "202601"]
    assert [(c.start.day, c.end.day, c.rows) for c in jan_scores] == [(1, 2, 4), (2, 3, 4), (3, 4, 4), (5, 5, 3)]
    assert jan_scores[0].lo is None and jan_scores[0].hi == ("2026-01-02", "101")
    assert jan_scores[1].lo == ("2026-01-02", "101") and jan_scores[1].key == KEYS[("c1", "scores")].columns
    assert jan_scores[2].hi is None and jan_scores[3].lo is None  # a cut on a day boundary needs no key
    assert len(cuts) == 2  # only the scores' two cuts inside a day are looked up


def test_each_scorecards_chunk_follows_every_scores_chunk_overlapping_its_days() -> None:
    _, plan = _plan(4)
    chunks = plan.clusters[0].chunks  # type: ignore[attr-defined]
    for i, c in enumerate(chunks):
        if c.table == "scorecards":
            overlapping = [j for j, s in enumerate(chunks) if s.table == "scores" and s.start <= c.end
                           and s.end >= c.start]
            assert overlapping and max(overlapping) < i
    # and a scorecards chunk comes as early as that allows: right after the scores reaching its last day
    assert [c.table for c in chunks][:4] == ["scores", "scores", "scores", "scorecards"]
