"""Key-range purge chunks: the fewest mutations, one partition each.

Per (cluster, customer, table, partition) the rows to delete, taken in the table's sort-key order, are
cut into runs of at most `cap` rows: ceil(rows / cap) mutations, the lower bound. A run's ends are
row offsets; an offset on a day boundary needs no key (the run starts or ends with a whole day), one
inside a day needs that row's key, found by the caller with one `LIMIT 1 OFFSET k` lookup on the
day (`cuts_needed` lists them, `plan_key_range_purge` builds the plan from their answers).

Execution order, per customer: a scorecards chunk comes after every scores chunk that starts on or
before its last day (the scores' filter reads the scorecards of their days), so with the workflow's
rule (no scorecards chunk while a scores chunk of its customer runs) every scores chunk overlapping
its days is done when it starts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import date
from itertools import accumulate
from typing import Any, NamedTuple

from commands.models import CustomerRef, DateRange, PurgePlan, PurgePolicy
from commands.schedule import plan_hash


class TableDays(NamedTuple):
    """Rows to delete of one customer in one table partition, per day with rows (days ascending)."""

    cluster: str
    customer: str
    table: str  # "scores" | "scorecards"
    partition: str  # partition ID; "" for a table without a partition key
    days: Sequence[date]
    rows: Sequence[int]


class TableKey(NamedTuple):
    """A table's sort-key columns after customer_id (the first is the day) and their types."""

    columns: tuple[str, ...]
    types: tuple[str, ...]


class Cut(NamedTuple):
    """A run boundary inside a day: the row at `offset` (0-based, in key order) of `day`."""

    cluster: str
    customer: str
    table: str
    partition: str
    day: date
    offset: int


class Run(NamedTuple):
    first: int  # day index of the first row
    last: int  # day index of the last row
    rows: int
    lo: int | None  # offset in day `first` of the first row; None: the day's first row
    hi: int | None  # offset in day `last` of the next run's first row; None: through the end of `last`


def runs(rows: Sequence[int], cap: int) -> list[Run]:
    """Cut the days' rows, in order, into ceil(total / cap) runs of at most `cap` rows."""
    if cap < 1:
        raise ValueError("the cap must be at least 1 row")
    if min(rows, default=0) < 0:
        raise ValueError("a row count is negative")
    prefix = [0, *accumulate(rows)]
    total = prefix[-1]
    out: list[Run] = []
    for a in range(0, total, cap):
        b = min(a + cap, total)
        first = bisect_right(prefix, a) - 1  # prefix[first] <= a < prefix[first + 1]
        last = bisect_left(prefix, b) - 1  # prefix[last] < b <= prefix[last + 1]
        lo = a - prefix[first] or None
        hi = b - prefix[last] if b < prefix[last + 1] else None
        out.append(Run(first, last, b - a, lo, hi))
    return out


def lower_bound(entries: Sequence[TableDays], cap: int) -> int:
    return sum(-(-sum(e.rows) // cap) for e in entries)


def cuts_needed(entries: Sequence[TableDays], cap: int) -> list[Cut]:
    """The row keys to look up: every run boundary that falls inside a day (each once)."""
    found: list[Cut] = []
    for e in entries:
        for r in runs(e.rows, cap):
            if r.hi is not None:
                found.append(Cut(e.cluster, e.customer, e.table, e.partition, e.days[r.last], r.hi))
    return found


def _order(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One customer's chunks in execution order: each scorecards chunk right after the last scores
    chunk starting on or before its last day."""
    scores = [c for c in chunks if c["table"] == "scores"]
    cards = [c for c in chunks if c["table"] == "scorecards"]
    out: list[dict[str, Any]] = []
    i = 0
    for card in cards:
        while i < len(scores) and scores[i]["start"] <= card["end"]:
            out.append(scores[i])
            i += 1
        out.append(card)
    return out + scores[i:]


def plan_key_range_purge(
    entries: Sequence[TableDays],
    keys: Mapping[tuple[str, str], TableKey],
    cut_keys: Mapping[Cut, Sequence[str]],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    types: Sequence[int],
    policy: PurgePolicy,
) -> PurgePlan:
    """The plan: per cluster, each customer's key-range chunks in execution order. `keys` gives each
    (cluster, table)'s sort key, `cut_keys` the key of every row `cuts_needed` named (as strings)."""
    cap = policy.max_rows_per_mutation
    home = {c.name: c.cluster for c in customers}
    kept = [e for e in entries if home.get(e.customer) == e.cluster and sum(e.rows) > 0]
    for e in kept:
        if list(e.days) != sorted(set(e.days)) or len(e.days) != len(e.rows):
            raise ValueError(f"{e.customer} {e.table}: one row count per day, days ascending, each once")
        if e.days[0] < rng.start or e.days[-1] > rng.end:
            raise ValueError(f"{e.customer} {e.table}: a day outside {rng.start}..{rng.end}")
    per_customer: dict[str, list[dict[str, Any]]] = {}
    totals = {"scorecards": 0, "scores": 0}
    for e in sorted(kept, key=lambda e: (e.table, e.days[0], e.partition)):
        key = keys[(e.cluster, e.table)]
        previous_hi: tuple[str, ...] | None = None
        for r in runs(e.rows, cap):
            hi = None
            if r.hi is not None:
                hi = tuple(cut_keys[Cut(e.cluster, e.customer, e.table, e.partition, e.days[r.last], r.hi)])
            per_customer.setdefault(e.customer, []).append({
                "cluster": e.cluster, "customer": e.customer, "table": e.table, "start": e.days[r.first],
                "end": e.days[r.last], "rows": r.rows, "over_cap": False, "partition": e.partition or None,
                "key": key.columns, "key_types": key.types, "lo": previous_hi if r.lo else None, "hi": hi,
            })
            previous_hi = hi
            totals[e.table] += r.rows
    clusters = [
        {"cluster": cluster,
         "chunks": [ch for c in customers if c.cluster == cluster for ch in _order(per_customer.get(c.name, []))]}
        for cluster in sorted({e.cluster for e in kept})
    ]
    plan = PurgePlan.model_validate({
        "range": rng, "types": tuple(sorted(set(types))), "clusters": clusters,
        "total_scorecards": totals["scorecards"], "total_scores": totals["scores"],
        "max_rows_per_mutation": cap, "plan_hash": "", "mutations_lower_bound": lower_bound(kept, cap),
    })
    return plan.model_copy(update={"plan_hash": plan_hash(plan)})
