"""Schedules and plan hashes: LPT makespan on N slots, its lower bound, the stable plan hash,
and `plan_backfill`, which puts windows, estimates and schedule together."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from commands.models import (
    BackfillPlan,
    CustomerRef,
    DateRange,
    DayVolume,
    Throughput,
    WindowPolicy,
)
from commands.windows import plan_customer


def lpt_schedule(durations: Sequence[float], slots: int) -> tuple[float, list[int]]:
    """Longest processing time first, each job to the least-loaded slot (ties: lowest slot)."""
    if slots < 1:
        raise ValueError("slots must be at least 1")
    order = sorted(range(len(durations)), key=durations.__getitem__, reverse=True)  # stable: ties by index
    heap = [(0.0, s) for s in range(slots)]
    assignment = [0] * len(durations)
    for i in order:
        load, slot = heap[0]
        assignment[i] = slot
        heapq.heapreplace(heap, (load + durations[i], slot))  # pop the least loaded, push it back: one sift
    return max(load for load, _ in heap), assignment


def lower_bound(durations: Sequence[float], slots: int) -> float:
    if not durations:
        return 0.0
    return max(sum(durations) / slots, max(durations))


def plan_hash(model: BaseModel) -> str:
    """Stable across processes and runs: sha256 of the model's JSON (fields in declaration order,
    dates ISO, floats by repr), without the plan_hash field itself."""
    text = model.model_dump_json(exclude={"plan_hash"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _round2(pair: tuple[float, float]) -> tuple[float, float]:
    return round(pair[0], 2), round(pair[1], 2)


def daily_series(volumes: Sequence[DayVolume], names: Iterable[str], rng: DateRange) -> dict[str, list[int]]:
    """Each customer's volume on every day of `rng`, in order (zeros included); rows of other customers
    or days are ignored and repeated rows add up."""
    index = {d: i for i, d in enumerate(rng.each_day())}
    series: dict[str, list[int]] = {name: [0] * len(index) for name in names}
    for customer, day, conversations in volumes:  # ~35K rows for 95 customers over a year: keep this loop lean
        row = series.get(customer)
        i = index.get(day)
        if row is not None and i is not None:
            row[i] += conversations
    return series


def plan_backfill(
    volumes: Sequence[DayVolume],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    policy: WindowPolicy,
    throughput: Throughput,
    parallel: int,
    window_override: int | None = None,
) -> BackfillPlan:
    series = daily_series(volumes, (c.name for c in customers), rng)
    return plan_backfill_series(series, customers, rng, policy, throughput, parallel, window_override)


def plan_backfill_series(
    series: Mapping[str, Sequence[int]],
    customers: Sequence[CustomerRef],
    rng: DateRange,
    policy: WindowPolicy,
    throughput: Throughput | Mapping[str, Throughput],
    parallel: int,
    window_override: int | None = None,
    rates: Mapping[str, str] | None = None,
) -> BackfillPlan:
    """The plan from each customer's volume on every day of `rng` (series[name][i]: day i of the range;
    a customer without a series had no volume). `throughput`: one range, or each customer's (learned
    ones, see commands/estimates.py); `rates`: where each customer's came from, said in the plan."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, not {parallel}")
    if not customers:
        raise ValueError("a backfill plan needs at least one customer")
    days = rng.each_day()
    none = [0] * len(days)
    for name, counts in series.items():
        if len(counts) != len(days):
            raise ValueError(f"{name}: {len(counts)} daily volumes for a range of {len(days)} days")
        if counts and min(counts) < 0:  # the cuts bisect running totals: they must never go down
            raise ValueError(f"{name}: a daily volume is negative")
    def rate_of(name: str) -> Throughput:
        return throughput if isinstance(throughput, Throughput) else throughput[name]

    plans = [plan_customer(c, days, series.get(c.name, none), policy, rate_of(c.name), window_override)
             for c in customers]
    for p in plans:
        if rates and p["customer"] in rates:
            p["rates"] = rates[p["customer"]]
    lo = [w["est_hours"][0] for p in plans for w in p["windows"]]
    hi = [w["est_hours"][1] for p in plans for w in p["windows"]]
    # One validation of the whole plan (windows arrive as dicts): far cheaper than a model per window.
    plan = BackfillPlan.model_validate({
        "range": rng,
        "customers": plans,
        "parallel": parallel,
        "sequential_hours": _round2((sum(lo), sum(hi))),
        "makespan_hours": _round2((lpt_schedule(lo, parallel)[0], lpt_schedule(hi, parallel)[0])),
        "lower_bound_hours": _round2((lower_bound(lo, parallel), lower_bound(hi, parallel))),
        "plan_hash": "",
    })
    return plan.model_copy(update={"plan_hash": plan_hash(plan)})


def schedule_order(plan: BackfillPlan) -> list[int]:
    """Indexes of plan.windows in the order a job should start them: largest first (LPT)."""
    windows = plan.windows
    return sorted(range(len(windows)), key=lambda i: (-windows[i].conversations, i))
