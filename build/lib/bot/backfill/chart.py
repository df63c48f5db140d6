"""A PNG of daily volume per customer with the plan's window boundaries drawn."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

from commands.models import BackfillPlan, DayVolume

MAX_PANELS = 12


def backfill_chart(plan: BackfillPlan, volumes: list[DayVolume], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_day: dict[str, dict[date, int]] = defaultdict(dict)
    for v in volumes:
        per_day[v.customer][v.day] = v.conversations
    # The largest customers are the ones whose windows matter; the tail is summarised in the title.
    customers = sorted(plan.customers, key=lambda c: -c.daily_avg)
    shown = customers[:MAX_PANELS]
    days = plan.range.each_day()
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.8 * len(shown) + 0.8), sharex=True, squeeze=False)
    for ax, cust in zip(axes[:, 0], shown, strict=True):
        counts = [per_day[cust.customer].get(d, 0) for d in days]
        ax.bar(days, counts, width=0.9, color="#4a7ab5")
        for w in cust.windows:
            ax.axvline(w.start, color="#d9534f", linewidth=0.8)  # type: ignore[arg-type]
        ax.set_ylabel("per day", fontsize=8)
        ax.set_title(f"{cust.customer} ({cust.cluster}): {cust.window_days}d windows x {len(cust.windows)}",
                     fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    rest = len(customers) - len(shown)
    title = f"Backfill plan {plan.plan_hash}: conversations per day, window starts in red"
    if rest > 0:
        title += f" ({rest} smaller customers not drawn)"
    fig.suptitle(title, fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
