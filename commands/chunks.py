"""Purge chunks: per cluster and customer, consecutive days grouped while each table's rows stay
under the cap; scores are deleted before their scorecards (the scores' filter needs them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from commands.models import (
    Chunk,
    ClusterPurgePlan,
    CustomerRef,
    DateRange,
    PurgeDayCount,
    PurgePlan,
    PurgePolicy,
    PurgeTable,
)
from commands.schedule import plan_hash

Day = tuple[date, int, int]  # day, scorecards, scores


def group_days(days: Sequence[Day], cap: int) -> list[list[Day]]:
    groups: list[list[Day]] = []
    current: list[Day] = []
    cards = scores = 0
    for day in days:
        _, n_cards, n_scores = day
        if current and (cards + n_cards > cap or scores + n_scores > cap):
            groups.append(current)
            current, cards, scores = [], 0, 0
        current.append(day)
        cards += n_cards
        scores += n_scores
    if current:
        groups.append(current)
    return groups


def _chunks(cluster: str, customer: str, group: list[Day], cap: int) -> list[Chunk]:
    start, end = group[0][0], group[-1][0]
    scores = sum(s for _, _, s in group)
    cards = sum(c for _, c, _ in group)
    order: tuple[tuple[PurgeTable, int], ...] = (("scores", scores), ("scorecards", cards))
    return [Chunk(cluster=cluster, customer=customer, table=table, start=start, end=end, rows=rows,
                  over_cap=rows > cap) for table, rows in order]


def plan_purge(
    counts: Sequence[PurgeDayCount],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    types: Sequence[int],
    policy: PurgePolicy,
) -> PurgePlan:
    cap = policy.max_rows_per_mutation
    wanted = {c.name: c.cluster for c in customers}
    lo, hi = rng.start, rng.end
    per: dict[str, dict[date, list[int]]] = {}  # customer -> day -> [scorecards, scores]
    for cluster, customer, day, cards, scores in counts:  # ~35K rows a year: keep this loop lean
        if wanted.get(customer) != cluster or day < lo or day > hi or not (cards or scores):
            continue
        days = per.get(customer)
        if days is None:
            days = per[customer] = {}
        slot = days.get(day)
        if slot is None:
            days[day] = [cards, scores]
        else:
            slot[0] += cards
            slot[1] += scores
    clusters: list[ClusterPurgePlan] = []
    for cluster in sorted({wanted[customer] for customer in per}):
        chunks: list[Chunk] = []
        for customer in (c.name for c in customers if c.cluster == cluster):
            days_of = sorted((d, v[0], v[1]) for d, v in per.get(customer, {}).items())
            for group in group_days(days_of, cap):
                chunks += _chunks(cluster, customer, group, cap)
        clusters.append(ClusterPurgePlan(cluster=cluster, chunks=tuple(chunks)))
    plan = PurgePlan(
        range=rng,
        types=tuple(sorted(set(types))),
        clusters=tuple(clusters),
        total_scorecards=sum(ch.rows for cp in clusters for ch in cp.chunks if ch.table == "scorecards"),
        total_scores=sum(ch.rows for cp in clusters for ch in cp.chunks if ch.table == "scores"),
        max_rows_per_mutation=cap,
        plan_hash="",
    )
    return plan.model_copy(update={"plan_hash": plan_hash(plan)})
