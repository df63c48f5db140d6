"""Properties of the pure planners (hypothesis) and the seed week's concrete choices."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.chunks import plan_purge, plan_purge_days, purge_days
from commands.models import (
    CustomerRef,
    DateRange,
    DayVolume,
    PurgeDayCount,
    PurgeDays,
    PurgePolicy,
    Throughput,
    WindowPolicy,
    WindowRule,
)
from commands.schedule import daily_series, lower_bound, lpt_schedule, plan_backfill, plan_backfill_series

SEED = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))
POLICY = WindowPolicy()
RATE = Throughput()


def flat(customer: str, per_day: int, rng: DateRange = SEED) -> list[DayVolume]:
    return [DayVolume(customer=customer, day=d, conversations=per_day) for d in rng.each_day()]


def test_seed_week_window_choices() -> None:
    refs = [CustomerRef(name=n, cluster="voice-prod") for n in ("hilton", "united-east", "care-oregon")]
    volumes = flat("hilton", 90_000) + flat("united-east", 45_000) + flat("care-oregon", 12_000)
    plan = plan_backfill(volumes, refs, SEED, POLICY, RATE, parallel=8)
    by = {c.customer: c for c in plan.customers}
    assert [by[n].window_days for n in ("hilton", "united-east", "care-oregon")] == [5, 7, 10]
    assert len(by["hilton"].windows) == 11 and len(by["united-east"].windows) == 8
    assert by["united-east"].windows[0].est_hours == (6.3, 9.0)  # 315K conversations at 50K..35K/h
    assert plan.makespan_hours[1] < plan.sequential_hours[1] / 4
    assert plan.lower_bound_hours[1] <= plan.makespan_hours[1]


def test_window_override_warns_when_it_breaks_the_budget() -> None:
    ref = [CustomerRef(name="hilton", cluster="c")]
    plan = plan_backfill(flat("hilton", 90_000), ref, SEED, POLICY, RATE, parallel=4, window_override=51)
    (cust,) = plan.customers
    assert len(cust.windows) == 1 and cust.rule == "--window 51d"
    assert cust.warnings and "budget" in cust.warnings[0]


def test_oportun_needs_one_day_chunks_scores_first() -> None:
    counts = [PurgeDayCount(cluster="c", customer="oportun", day=d, scorecards=60_000, scores=540_000)
              for d in SEED.each_day()]
    plan = plan_purge(counts, [CustomerRef(name="oportun", cluster="c")], SEED, (1, 2, 3), PurgePolicy())
    chunks = plan.clusters[0].chunks
    assert len(chunks) == 102
    assert all(ch.start == ch.end for ch in chunks)
    assert [ch.table for ch in chunks[:4]] == ["scores", "scorecards", "scores", "scorecards"]
    assert plan.total_scores == 51 * 540_000 and plan.total_scorecards == 51 * 60_000


volumes_st = st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=70)
policy_st = st.builds(
    lambda a, b, h: WindowPolicy(rules=(WindowRule(min_daily=a + b, window_days=3), WindowRule(min_daily=a,
                                 window_days=7), WindowRule(min_daily=0, window_days=11)), max_window_hours=h),
    st.integers(0, 100_000), st.integers(0, 100_000), st.floats(0.5, 40),
)


@settings(max_examples=150, deadline=None)
@given(volumes_st, policy_st, st.one_of(st.none(), st.integers(1, 20)))
def test_windows_partition_the_range_and_fit_the_budget(days: list[int], policy: WindowPolicy,
                                                         override: int | None) -> None:
    rng = DateRange(start=date(2026, 1, 1), end=date(2026, 1, 1) + timedelta(days=len(days) - 1))
    vols = [DayVolume(customer="x", day=d, conversations=n) for d, n in zip(rng.each_day(), days, strict=True)]
    plan = plan_backfill(vols, [CustomerRef(name="x", cluster="c")], rng, policy, RATE, 3, override)
    windows = plan.windows
    assert windows[0].start == rng.start and windows[-1].end == rng.end
    for a, b in itertools.pairwise(windows):
        assert b.start == a.end + timedelta(days=1)  # no gap, no overlap, in order
    assert sum(w.conversations for w in windows) == sum(days)
    if override is None:
        for w in windows:
            assert w.est_hours[1] <= policy.max_window_hours + 0.01 or w.start == w.end


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 30000)), min_size=1, max_size=60),
       st.integers(1, 20000))
def test_chunks_stay_under_the_cap_unless_single_day(days: list[tuple[int, int]], cap: int) -> None:
    rng = DateRange(start=date(2026, 1, 1), end=date(2026, 1, 1) + timedelta(days=len(days) - 1))
    counts = [PurgeDayCount(cluster="c", customer="x", day=d, scorecards=a, scores=b)
              for d, (a, b) in zip(rng.each_day(), days, strict=True)]
    plan = plan_purge(counts, [CustomerRef(name="x", cluster="c")], rng, (1,),
                      PurgePolicy(max_rows_per_mutation=cap))
    chunks = [ch for cp in plan.clusters for ch in cp.chunks]
    for ch in chunks:
        assert ch.rows <= cap or ch.start == ch.end
        assert ch.over_cap == (ch.rows > cap)
    pairs = list(zip(chunks[::2], chunks[1::2], strict=True))
    assert all(s.table == "scores" and c.table == "scorecards" and (s.start, s.end) == (c.start, c.end)
               for s, c in pairs)
    assert plan.total_scores == sum(b for _, b in days) and plan.total_scorecards == sum(a for a, _ in days)


def brute_force_makespan(durations: list[float], slots: int) -> float:
    best = float("inf")
    for assignment in itertools.product(range(slots), repeat=len(durations)):
        loads = [0.0] * slots
        for d, s in zip(durations, assignment, strict=True):
            loads[s] += d
        best = min(best, max(loads))
    return best


@settings(max_examples=120, deadline=None)
@given(st.lists(st.floats(0.1, 50), min_size=1, max_size=7), st.integers(1, 3))
def test_lpt_is_within_graham_bound(durations: list[float], slots: int) -> None:
    makespan, assignment = lpt_schedule(durations, slots)
    optimum = brute_force_makespan(durations, slots)
    assert makespan <= (4 / 3 - 1 / (3 * slots)) * optimum + 1e-9
    assert lower_bound(durations, slots) <= optimum + 1e-9
    assert sorted(set(assignment)) <= list(range(slots))


@settings(max_examples=80, deadline=None)
@given(volumes_st, st.integers(0, 69), st.integers(1, 1000))
def test_hash_changes_iff_a_planned_number_changes(days: list[int], at: int, delta: int) -> None:
    rng = DateRange(start=date(2026, 1, 1), end=date(2026, 1, 1) + timedelta(days=len(days) - 1))
    ref = [CustomerRef(name="x", cluster="c")]

    def plan(values: list[int]):  # type: ignore[no-untyped-def]
        vols = [DayVolume(customer="x", day=d, conversations=n) for d, n in zip(rng.each_day(), values, strict=True)]
        return plan_backfill(vols, ref, rng, POLICY, RATE, 2)

    first, again = plan(days), plan(list(days))
    assert first.plan_hash == again.plan_hash
    changed = list(days)
    changed[at % len(days)] += delta
    assert plan(changed).plan_hash != first.plan_hash


def test_series_planners_match_the_row_planners_and_refuse_malformed_series() -> None:
    refs = [CustomerRef(name="hilton", cluster="c1"), CustomerRef(name="oportun", cluster="c2")]
    volumes = flat("hilton", 90_000) + [DayVolume(customer="oportun", day=SEED.start, conversations=7)]
    by_hand = {"hilton": [90_000] * 51, "oportun": [7] + [0] * 50}
    assert daily_series(volumes, ["hilton", "oportun"], SEED) == by_hand
    from_rows = plan_backfill(volumes, refs, SEED, POLICY, RATE, 4)
    assert plan_backfill_series(by_hand, refs, SEED, POLICY, RATE, 4) == from_rows
    with pytest.raises(ValueError, match="3 daily volumes for a range of 51 days"):
        plan_backfill_series({"hilton": [1, 2, 3]}, refs, SEED, POLICY, RATE, 4)
    with pytest.raises(ValueError, match="negative"):
        plan_backfill_series({"hilton": [-1] + [0] * 50}, refs, SEED, POLICY, RATE, 4)

    counts = [PurgeDayCount(cluster="c2", customer="oportun", day=d, scorecards=500, scores=4_500)
              for d in SEED.each_day()[:10]]
    found = purge_days(counts, refs, SEED)
    assert found == {"oportun": PurgeDays("c2", "oportun", SEED.each_day()[:10], [500] * 10, [4_500] * 10)}
    policy = PurgePolicy(max_rows_per_mutation=10_000)
    plan = plan_purge_days(found, refs, SEED, (1, 2, 3), policy)
    assert plan == plan_purge(counts, refs, SEED, (1, 2, 3), policy)
    assert [(c.table, c.start.day, c.end.day, c.rows) for c in plan.clusters[0].chunks[:2]] == [
        ("scores", 3, 4, 9_000), ("scorecards", 3, 4, 1_000)]  # two days of scores fit under 10,000
    days = list(found["oportun"].days)
    backwards = found["oportun"]._replace(days=days[::-1])
    with pytest.raises(ValueError, match="ascending"):
        plan_purge_days({"oportun": backwards}, refs, SEED, (1, 2, 3), policy)
    negative = found["oportun"]._replace(scores=[-1] * len(days))
    with pytest.raises(ValueError, match="negative"):
        plan_purge_days({"oportun": negative}, refs, SEED, (1, 2, 3), policy)
    elsewhere = found["oportun"]._replace(cluster="c1")  # not oportun's cluster: nothing to delete there
    assert plan_purge_days({"oportun": elsewhere}, refs, SEED, (1, 2, 3), policy).clusters == ()
