"""Backfill windows: the policy picks a window length per customer from its daily volume, then
any window slower than the time budget (at the pessimistic rate) is split further.

Windows are cut on prefix sums of the daily volumes (a window's volume is one subtraction and a
budget cut one bisection), and returned as plain dicts that `plan_backfill` validates in one go:
a year of 95 customers is thousands of windows, and one batch validation is half the cost of
building each model on its own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import date
from itertools import accumulate
from typing import Any

from commands.models import CustomerRef, Throughput, WindowPolicy


def choose_window(daily_avg: float, policy: WindowPolicy) -> tuple[int, str]:
    for rule in sorted(policy.rules, key=lambda r: -r.min_daily):
        if daily_avg >= rule.min_daily:
            return rule.window_days, f">= {rule.min_daily:,}/day -> {rule.window_days}d"
    smallest = min(policy.rules, key=lambda r: r.min_daily)
    return smallest.window_days, f"below every rule -> {smallest.window_days}d"


def estimate(conversations: int, throughput: Throughput) -> tuple[float, float]:
    return round(conversations / throughput.high, 2), round(conversations / throughput.low, 2)


def window_cuts(prefix: Sequence[int], window_days: int, budget_rows: float | None) -> list[tuple[int, int]]:
    """Day-index pieces [a, b) of `window_days` each; with a budget, each piece is cut greedily so
    its volume stays within it (a single day may not). prefix[i] is the volume of days before i."""
    n = len(prefix) - 1
    cuts: list[tuple[int, int]] = []
    for lo in range(0, n, window_days):
        hi = min(lo + window_days, n)
        if budget_rows is None:
            cuts.append((lo, hi))
            continue
        start = lo
        while start < hi:
            # The longest run from `start` whose volume stays within the budget; at least one day.
            end = max(bisect_right(prefix, prefix[start] + budget_rows, start + 1, hi + 1) - 1, start + 1)
            cuts.append((start, end))
            start = end
    return cuts


def plan_customer(
    customer: CustomerRef,
    days: Sequence[date],
    counts: Sequence[int],
    policy: WindowPolicy,
    throughput: Throughput,
    window_override: int | None = None,
) -> dict[str, Any]:
    """One customer's plan as the fields of a CustomerBackfillPlan; `days` is the whole range in
    order, counts[i] its volume on days[i]."""
    prefix = [0, *accumulate(counts)]
    daily_avg = prefix[-1] / len(days)
    if window_override is not None:
        window_days, rule = window_override, f"--window {window_override}d"
        cuts = window_cuts(prefix, window_days, None)
    else:
        window_days, rule = choose_window(daily_avg, policy)
        cuts = window_cuts(prefix, window_days, policy.max_window_hours * throughput.low)
        if len(cuts) > -(-len(days) // window_days):
            rule += f", split to fit {policy.max_window_hours:g} h"
    name, cluster, high, low = customer.name, customer.cluster, throughput.high, throughput.low
    windows: list[dict[str, Any]] = [
        {"customer": name, "cluster": cluster, "start": days[a], "end": days[b - 1], "conversations": total,
         "est_hours": (round(total / high, 2), round(total / low, 2))}
        for a, b in cuts
        for total in (prefix[b] - prefix[a],)
    ]
    warnings = []
    if window_override is not None:
        warnings = [
            f"window {w['start']}..{w['end']} may take {w['est_hours'][1]:.1f} h, over the "
            f"{policy.max_window_hours:g} h budget"
            for w in windows
            if w["est_hours"][1] > policy.max_window_hours
        ]
    return {
        "customer": name,
        "cluster": cluster,
        "daily_avg": round(daily_avg, 1),
        "window_days": window_days,
        "rule": rule,
        "windows": windows,
        "warnings": warnings,
    }
