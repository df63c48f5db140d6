"""Backfill windows: the policy picks a window length per customer from its daily volume, then
any window slower than the time budget (at the pessimistic rate) is split further."""

from __future__ import annotations

from datetime import date

from commands.models import CustomerBackfillPlan, CustomerRef, DateRange, Throughput, Window, WindowPolicy


def choose_window(daily_avg: float, policy: WindowPolicy) -> tuple[int, str]:
    for rule in sorted(policy.rules, key=lambda r: -r.min_daily):
        if daily_avg >= rule.min_daily:
            return rule.window_days, f">= {rule.min_daily:,}/day -> {rule.window_days}d"
    smallest = min(policy.rules, key=lambda r: r.min_daily)
    return smallest.window_days, f"below every rule -> {smallest.window_days}d"


def estimate(conversations: int, throughput: Throughput) -> tuple[float, float]:
    return round(conversations / throughput.high, 2), round(conversations / throughput.low, 2)


def _window(customer: CustomerRef, days: list[tuple[date, int]], throughput: Throughput) -> Window:
    total = sum(n for _, n in days)
    return Window.model_construct(
        customer=customer.name,
        cluster=customer.cluster,
        start=days[0][0],
        end=days[-1][0],
        conversations=total,
        est_hours=estimate(total, throughput),
    )


def _fit(days: list[tuple[date, int]], budget_rows: float) -> list[list[tuple[date, int]]]:
    """Cut consecutive days greedily so each piece stays within the budget (a single day may not)."""
    pieces: list[list[tuple[date, int]]] = []
    current: list[tuple[date, int]] = []
    rows = 0
    for day, n in days:
        if current and rows + n > budget_rows:
            pieces.append(current)
            current, rows = [], 0
        current.append((day, n))
        rows += n
    if current:
        pieces.append(current)
    return pieces


def split_windows(
    customer: CustomerRef,
    days: list[tuple[date, int]],
    window_days: int,
    throughput: Throughput,
    max_window_hours: float | None,
) -> list[Window]:
    """Windows of `window_days` over `days` (every day of the range, in order, with its volume)."""
    windows: list[Window] = []
    for i in range(0, len(days), window_days):
        block = days[i : i + window_days]
        if max_window_hours is None:
            windows.append(_window(customer, block, throughput))
            continue
        budget_rows = max_window_hours * throughput.low
        windows += [_window(customer, piece, throughput) for piece in _fit(block, budget_rows)]
    return windows


def daily_series(rng: DateRange, volumes: dict[date, int]) -> list[tuple[date, int]]:
    return [(d, volumes.get(d, 0)) for d in rng.each_day()]


def plan_customer(
    customer: CustomerRef,
    rng: DateRange,
    volumes: dict[date, int],
    policy: WindowPolicy,
    throughput: Throughput,
    window_override: int | None = None,
) -> CustomerBackfillPlan:
    days = daily_series(rng, volumes)
    daily_avg = sum(n for _, n in days) / len(days)
    warnings: list[str] = []
    if window_override is not None:
        window_days, rule = window_override, f"--window {window_override}d"
        windows = split_windows(customer, days, window_days, throughput, None)
        for w in windows:
            if w.est_hours[1] > policy.max_window_hours:
                warnings.append(
                    f"window {w.start}..{w.end} may take {w.est_hours[1]:.1f} h, over the "
                    f"{policy.max_window_hours:g} h budget"
                )
    else:
        window_days, rule = choose_window(daily_avg, policy)
        windows = split_windows(customer, days, window_days, throughput, policy.max_window_hours)
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
