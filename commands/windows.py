"""Backfill windows: the policy picks a window length per customer from its daily volume, then
any window slower than the time budget (at the pessimistic rate) is split further."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from commands.models import CustomerBackfillPlan, CustomerRef, Throughput, Window, WindowPolicy


def choose_window(daily_avg: float, policy: WindowPolicy) -> tuple[int, str]:
    for rule in sorted(policy.rules, key=lambda r: -r.min_daily):
        if daily_avg >= rule.min_daily:
            return rule.window_days, f">= {rule.min_daily:,}/day -> {rule.window_days}d"
    smallest = min(policy.rules, key=lambda r: r.min_daily)
    return smallest.window_days, f"below every rule -> {smallest.window_days}d"


def estimate(conversations: int, throughput: Throughput) -> tuple[float, float]:
    return round(conversations / throughput.high, 2), round(conversations / throughput.low, 2)


def _window(customer: CustomerRef, days: Sequence[date], counts: Sequence[int], lo: int, hi: int,
            throughput: Throughput) -> Window:
    """The window over days[lo:hi] (validated: as fast as model_construct, and checked)."""
    total = sum(counts[lo:hi])
    return Window(customer=customer.name, cluster=customer.cluster, start=days[lo], end=days[hi - 1],
                  conversations=total, est_hours=estimate(total, throughput))


def _fit(counts: Sequence[int], lo: int, hi: int, budget_rows: float) -> list[tuple[int, int]]:
    """Cut days lo..hi-1 greedily so each piece stays within the budget (a single day may not)."""
    pieces: list[tuple[int, int]] = []
    start, rows = lo, 0
    for i in range(lo, hi):
        n = counts[i]
        if i > start and rows + n > budget_rows:
            pieces.append((start, i))
            start, rows = i, 0
        rows += n
    if start < hi:
        pieces.append((start, hi))
    return pieces


def split_windows(
    customer: CustomerRef,
    days: Sequence[date],
    counts: Sequence[int],
    window_days: int,
    throughput: Throughput,
    max_window_hours: float | None,
) -> list[Window]:
    """Windows of `window_days` over `days` (every day of the range, in order; counts[i] is days[i]'s volume)."""
    windows: list[Window] = []
    for lo in range(0, len(days), window_days):
        hi = min(lo + window_days, len(days))
        if max_window_hours is None:
            windows.append(_window(customer, days, counts, lo, hi, throughput))
            continue
        budget_rows = max_window_hours * throughput.low
        windows += [_window(customer, days, counts, a, b, throughput) for a, b in _fit(counts, lo, hi, budget_rows)]
    return windows


def plan_customer(
    customer: CustomerRef,
    days: Sequence[date],
    counts: Sequence[int],
    policy: WindowPolicy,
    throughput: Throughput,
    window_override: int | None = None,
) -> CustomerBackfillPlan:
    """One customer's windows; `days` is the whole range in order, counts[i] its volume on days[i]."""
    daily_avg = sum(counts) / len(days)
    warnings: list[str] = []
    if window_override is not None:
        window_days, rule = window_override, f"--window {window_override}d"
        windows = split_windows(customer, days, counts, window_days, throughput, None)
        for w in windows:
            if w.est_hours[1] > policy.max_window_hours:
                warnings.append(
                    f"window {w.start}..{w.end} may take {w.est_hours[1]:.1f} h, over the "
                    f"{policy.max_window_hours:g} h budget"
                )
    else:
        window_days, rule = choose_window(daily_avg, policy)
        windows = split_windows(customer, days, counts, window_days, throughput, policy.max_window_hours)
        if len(windows) > -(-len(days) // window_days):
            rule += f", split to fit {policy.max_window_hours:g} h"
    return CustomerBackfillPlan(
        customer=customer.name,
        cluster=customer.cluster,
        daily_avg=round(daily_avg, 1),
        window_days=window_days,
        rule=rule,
        windows=tuple(windows),
        warnings=tuple(warnings),
    )
