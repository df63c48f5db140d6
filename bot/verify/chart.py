"""A PNG of a deep verification's differing rows per day, stacked by kind."""

from __future__ import annotations

from pathlib import Path

from bot.charts import save_png
from commands.deep_rows import KIND_TEXT, KINDS

COLORS = {"missing": "#d9534f", "extra": "#f0ad4e", "changed": "#4a7ab5", "appeal": "#8e44ad",
          "duplicated": "#5cb85c"}


def deep_chart(per_day: dict[str, dict[str, int]], title: str, path: Path) -> Path:
    """`per_day`: {"2026-01-20": {"missing": 3, ...}} (plain data: it is drawn in the drawing process)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sorted(per_day)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    bottom = [0] * len(days)
    for kind in KINDS:
        counts = [per_day[d].get(kind, 0) for d in days]
        if any(counts):
            ax.bar(days, counts, bottom=bottom, color=COLORS[kind], label=KIND_TEXT[kind], width=0.8)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_ylabel("differing rows", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10, loc="left")
    return save_png(fig, path)
