"""What a backfill job is started with: the plan checked, its windows in the order the job starts them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bot.config import ShepherdConfig
from bot.errors import UserInputError
from bot.temporal.models import WindowSpec
from commands.models import BackfillPlan


def check_backfill_plan(plan: BackfillPlan, config: ShepherdConfig) -> None:
    """Refuse a plan that cannot be run, before anything starts."""
    if not plan.windows:
        raise UserInputError("the plan has no windows: nothing to backfill")
    known = {c.name for c in config.clusters}
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for w in plan.windows:
        if w.cluster not in known:
            raise UserInputError(f"window {w.customer} {w.start}..{w.end} names unknown cluster {w.cluster}")
        if w.end < w.start:
            raise UserInputError(f"window {w.customer} {w.start}..{w.end} ends before it starts")
        by_customer[w.customer].append(w)
    for customer, windows in by_customer.items():
        windows.sort(key=lambda w: w.start)
        for a, b in zip(windows, windows[1:], strict=False):
            if b.start <= a.end:
                raise UserInputError(f"windows of {customer} overlap: {a.start}..{a.end} and {b.start}..{b.end}")


def window_specs(plan: BackfillPlan) -> list[WindowSpec]:
    """The plan's windows in the order a job starts them: largest first (the LPT schedule)."""
    specs = [
        WindowSpec(key=f"{w.customer}:{w.start}:{w.end}", customer=w.customer, cluster=w.cluster,
                   start=w.start.isoformat(), end=w.end.isoformat(), conversations=w.conversations,
                   est_hours_hi=w.est_hours[1])
        for w in plan.windows
    ]
    return sorted(specs, key=lambda s: (-s.conversations, s.customer, s.start))
