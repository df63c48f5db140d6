"""Purge chunks: per cluster and customer, consecutive days grouped while each table's rows stay
under the cap; scores are deleted before their scorecards (the scores' filter needs them).

Days are cut on prefix sums (one bisection per chunk, not one step per day) and chunks are built
as dicts that one validation of the whole plan turns into models.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import Any

from commands.models import CustomerRef, DateRange, PurgeDayCount, PurgeDays, PurgePlan, PurgePolicy
from commands.schedule import plan_hash


def day_groups(cards: Sequence[int], scores: Sequence[int], cap: int) -> list[tuple[int, int, int, int]]:
    """Greedy groups of consecutive days with rows, each under `cap` in both tables unless a single
    day: (first day index, last day index, scorecards, scores). Days without rows start or end no group."""
    pc = [0, *accumulate(cards)]
    ps = [0, *accumulate(scores)]
    pt = [a + b for a, b in zip(pc, ps, strict=True)]  # rows of either table before day i
    n, groups = len(cards), []
    start = bisect_right(pt, 0) - 1  # the first day with rows
    while start < n:
        # The longest run from `start` within the cap in both tables; at least one day.
        end = min(bisect_right(pc, pc[start] + cap, start + 1), bisect_right(ps, ps[start] + cap, start + 1)) - 1
        end = max(end, start + 1)
        last = bisect_left(pt, pt[end], start, end + 1) - 1  # the last day with rows before `end`
        groups.append((start, last, pc[end] - pc[start], ps[end] - ps[start]))
        start = bisect_right(pt, pt[end], end) - 1  # the next day with rows (n when none)
    return groups


def purge_days(
    counts: Sequence[PurgeDayCount], customers: Sequence[CustomerRef], rng: DateRange
) -> dict[str, PurgeDays]:
    """Per customer, the days of `rng` with rows to delete in the customer's own cluster; rows of other
    clusters, customers or days are ignored and repeated rows add up."""
    days = rng.each_day()
    index = {d: i for i, d in enumerate(days)}
    per: dict[str, tuple[str, list[int], list[int]]] = {
        c.name: (c.cluster, [0] * len(days), [0] * len(days)) for c in customers
    }
    for cluster, customer, day, cards, scores in counts:  # ~35K rows a year: keep this loop lean
        entry = per.get(customer)
        i = index.get(day)
        if entry is not None and i is not None and entry[0] == cluster:
            entry[1][i] += cards
            entry[2][i] += scores
    found: dict[str, PurgeDays] = {}
    for name, (home, day_cards, day_scores) in per.items():
        kept = [i for i in range(len(days)) if day_cards[i] or day_scores[i]]
        if kept:
            found[name] = PurgeDays(home, name, [days[i] for i in kept], [day_cards[i] for i in kept],
                                    [day_scores[i] for i in kept])
    return found


def plan_purge(
    counts: Sequence[PurgeDayCount],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    types: Sequence[int],
    policy: PurgePolicy,
) -> PurgePlan:
    return plan_purge_days(purge_days(counts, customers, rng), customers, rng, types, policy)


def plan_purge_days(
    found: Mapping[str, PurgeDays],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    types: Sequence[int],
    policy: PurgePolicy,
) -> PurgePlan:
    """The plan from each customer's days with rows (a customer missing from `found`, or found in
    another cluster than its own, has nothing to delete)."""
    cap = policy.max_rows_per_mutation
    kept: dict[str, PurgeDays] = {}
    for c in customers:
        entry = found.get(c.name)
        if entry is None or entry.cluster != c.cluster:
            continue
        if list(entry.days) != sorted(set(entry.days)):
            raise ValueError(f"{c.name}: purge days must be ascending, each once")
        if min(entry.scorecards, default=0) < 0 or min(entry.scores, default=0) < 0:
            raise ValueError(f"{c.name}: a row count is negative")  # the cuts bisect running totals
        if not len(entry.days) == len(entry.scorecards) == len(entry.scores):
            raise ValueError(f"{c.name}: as many scorecard and score counts as days are needed")
        lo, hi = bisect_left(entry.days, rng.start), bisect_right(entry.days, rng.end)
        if any(entry.scorecards[lo:hi]) or any(entry.scores[lo:hi]):
            kept[c.name] = entry._replace(days=entry.days[lo:hi], scorecards=entry.scorecards[lo:hi],
                                          scores=entry.scores[lo:hi])
    clusters: list[dict[str, Any]] = []
    total_cards = total_scores = 0
    for cluster in sorted({entry.cluster for entry in kept.values()}):
        chunks: list[dict[str, Any]] = []
        for customer in (c.name for c in customers if c.cluster == cluster and c.name in kept):
            entry = kept[customer]
            days = entry.days
            for first, last, n_cards, n_scores in day_groups(entry.scorecards, entry.scores, cap):
                total_cards += n_cards
                total_scores += n_scores
                for table, rows in (("scores", n_scores), ("scorecards", n_cards)):
                    chunks.append({"cluster": cluster, "customer": customer, "table": table, "start": days[first],
                                   "end": days[last], "rows": rows, "over_cap": rows > cap})
        clusters.append({"cluster": cluster, "chunks": chunks})
    # One validation of the whole plan: far cheaper than a model per chunk.
    plan = PurgePlan.model_validate({
        "range": rng,
        "types": tuple(sorted(set(types))),
        "clusters": clusters,
        "total_scorecards": total_cards,
        "total_scores": total_scores,
        "max_rows_per_mutation": cap,
        "plan_hash": "",
    })
    return plan.model_copy(update={"plan_hash": plan_hash(plan)})
