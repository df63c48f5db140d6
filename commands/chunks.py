"""Purge chunks: per cluster and customer, consecutive days grouped while each table's rows stay
under the cap; scores are deleted before their scorecards (the scores' filter needs them)."""

from __future__ import annotations

from collections import defaultdict
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
    return [
        Chunk.model_construct(cluster=cluster, customer=customer, table=table, start=start, end=end, rows=rows,
                              over_cap=rows > cap)
        for table, rows in order
    ]


def plan_purge(
    counts: Sequence[PurgeDayCount],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    types: Sequence[int],
    policy: PurgePolicy,
) -> PurgePlan:
    cap = policy.max_rows_per_mutation
    wanted = {c.name: c.cluster for c in customers}
    per: dict[tuple[str, str], dict[date, list[int]]] = defaultdict(dict)
    for c in counts:
        if wanted.get(c.customer) != c.cluster or not rng.start <= c.day <= rng.end:
            continue
        if c.scorecards == 0 and c.scores == 0:
            continue
        slot = per[(c.cluster, c.customer)].setdefault(c.day, [0, 0])
        slot[0] += c.scorecards
        slot[1] += c.scores
    clusters: list[ClusterPurgePlan] = []
    for cluster in sorted({cl for cl, _ in per}):
        chunks: list[Chunk] = []
        for customer in (c.name for c in customers if c.cluster == cluster):
            days = sorted((d, v[0], v[1]) for d, v in per.get((cluster, customer), {}).items())
            for group in group_days(days, cap):
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
