"""PNGs: a plan's daily volume per customer with its window boundaries, and a finished job's planned vs
actual per window with its N over time."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

from bot.charts import save_png
from commands.job_story import Story, n_path, planned_vs_actual
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
    return save_png(fig, path)


def _unit(seconds: float) -> tuple[str, float]:
    """The unit a span reads best in, and its length in seconds."""
    return ("h", 3600.0) if seconds >= 2 * 3600 else ("min", 60.0) if seconds >= 120 else ("s", 1.0)


def job_chart(story: Story) -> bytes:
    """A finished job's PNG: each window's planned range beside the time it took, and N over time."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = story.windows
    longest = max([w.actual_h or 0 for w in windows] + [w.planned_h[1] for w in windows if w.planned_h] + [0])
    name, per = _unit(longest * 3600)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), gridspec_kw={"height_ratios": [3, 2]})
    xs = range(1, len(windows) + 1)
    for x, w in zip(xs, windows, strict=True):
        if w.planned_h is not None:
            lo, hi = (h * 3600 / per for h in w.planned_h)
            top.plot([x, x], [lo, hi], color="#9aa5b1", linewidth=4, solid_capstyle="butt", zorder=1)
    colours = {"within": "#2e7d32", "slower": "#c62828", "faster": "#1565c0", "unknown": "#6d6d6d"}
    for verdict, colour in colours.items():
        picked = [(x, (w.actual_h or 0) * 3600 / per) for x, w in zip(xs, windows, strict=True)
                  if w.verdict == verdict and w.actual_h is not None]
        if picked:
            top.scatter([p[0] for p in picked], [p[1] for p in picked], s=18, color=colour, zorder=2,
                        label=f"took ({verdict}: {len(picked)})")
    top.plot([], [], color="#9aa5b1", linewidth=4, label="planned range")
    top.set_ylabel(f"window duration ({name})", fontsize=8)
    top.set_xlabel("windows, in the order they started", fontsize=8)
    top.set_ylim(bottom=0)
    top.xaxis.get_major_locator().set_params(integer=True)
    top.legend(fontsize=7, loc="upper left")
    top.set_title(f"Planned vs actual per window: {planned_vs_actual(story)}", fontsize=9, loc="left", wrap=True)
    top.tick_params(labelsize=7)

    span_name, span_per = _unit(story.wall_s)
    end = story.wall_s / span_per
    for steps, label, colour, width in ((story.allowed, "N allowed" + (" (autopilot)" if story.autopilot else ""),
                                         "#d9534f", 2.0),
                                        (story.running, "windows running", "#4a7ab5", 1.2)):
        if steps:
            xs_t = [t / span_per for t, _ in steps] + [end]
            ys = [n for _, n in steps] + [steps[-1][1]]
            bottom.step(xs_t, ys, where="post", label=label, color=colour, linewidth=width)
    bottom.set_ylabel("windows at once", fontsize=8)
    bottom.set_xlabel(f"time since the first window started ({span_name})", fontsize=8)
    bottom.set_ylim(bottom=0)
    bottom.yaxis.get_major_locator().set_params(integer=True)
    bottom.legend(fontsize=7, loc="best")
    bottom.set_title(f"N over time: {n_path(story)}", fontsize=9, loc="left")
    bottom.tick_params(labelsize=7)
    fig.suptitle(f"Backfill {story.job_id}", fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()
