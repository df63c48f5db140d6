"""The job's status message (edited in place by the monitor) and its finished summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from bot.slack.job_blocks import bar
from bot.slack.messages import Message, actions, button, context, fields, header, section, table_sections
from commands import render
from commands.job_story import Story, n_path, planned_vs_actual
from commands.progress import WindowRate, WindowSnap, duration


@dataclass(frozen=True)
class JobFigures:
    percent: float
    done: int
    total: int
    rate: float | None  # conversations (or rows) per second, all running windows
    eta_s: tuple[float, float] | None


def _eta(eta: tuple[float, float] | None) -> str:
    return f"{duration(eta[0])} to {duration(eta[1])}" if eta else "not yet known"


def backfill_status(job_id: str, requester: str, state: str, windows: Sequence[WindowSnap],
                    rates: dict[str, WindowRate], figures: JobFigures, now: datetime, listed: int,
                    at_once: str = "") -> Message:
    counts: dict[str, int] = {}
    for w in windows:
        counts[w.state] = counts.get(w.state, 0) + 1
    running = sorted((w for w in windows if w.state == "running"),
                     key=lambda w: (rates.get(w.key, WindowRate(None, None)).rate or 0))  # slowest first
    shown = running[:listed]
    rows = []
    with_worker = any(w.worker for w in shown)
    for w in shown:
        r = rates.get(w.key, WindowRate(None, None))
        rows.append([w.customer, f"{w.start}..{w.end}", bar(w.done, w.total), f"{r.rate:,.1f}/s" if r.rate else "-",
                     _eta(r.eta_s) if r.eta_s else "-", *([w.worker or "-"] if with_worker else [])])
    titles = ["customer", "window", "progress", "rate", "ETA", *(["worker"] if with_worker else [])]
    lines = render.table(titles, rows, right={3}).split("\n") if rows else []
    rest = len(running) - len(shown)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    blocks = [
        header(f"Backfill {job_id}: {state} {figures.percent:.0f}%"),
        fields([("State", state), ("Requested by", f"<@{requester}>"),
                ("Windows", summary + (f" · {at_once}" if at_once else "")),
                ("Progress", f"{bar(figures.done, figures.total)} ({figures.done:,}/{figures.total:,})"),
                ("Rate", f"{figures.rate:,.1f}/s" if figures.rate else "-"), ("ETA", _eta(figures.eta_s))]),
        *table_sections(lines),
    ]
    if rest > 0:
        blocks.append(context(f"{rest} more running windows not shown (the slowest are listed)"))
    blocks.append(context(f"updated {now:%Y-%m-%d %H:%M:%S} UTC · events are posted in this thread"))
    return Message(f"Backfill {job_id}: {state}, {figures.percent:.0f}% ({summary})", blocks)


def purge_status(job_id: str, requester: str, state: str, clusters: dict[str, tuple[int, int, int, int]],
                 now: datetime, stop_reason: str | None) -> Message:
    """clusters: name -> (chunks done, chunks, rows deleted, rows planned)."""
    rows = [[name, f"{d}/{n}", f"{deleted:,}/{planned:,}", bar(deleted, planned)]
            for name, (d, n, deleted, planned) in sorted(clusters.items())]
    deleted = sum(v[2] for v in clusters.values())
    planned = sum(v[3] for v in clusters.values())
    lines = render.table(["cluster", "chunks", "rows deleted", "progress"], rows, right={1, 2}).split("\n")
    blocks = [header(f"Purge {job_id}: {state}"),
              fields([("State", state), ("Requested by", f"<@{requester}>"),
                      ("Deleted", f"{bar(deleted, planned)} ({deleted:,}/{planned:,})")]),
              *table_sections(lines)]
    if stop_reason:
        blocks.append(section(f":octagonal_sign: {stop_reason}"))
    blocks.append(context(f"updated {now:%Y-%m-%d %H:%M:%S} UTC · events are posted in this thread"))
    return Message(f"Purge {job_id}: {state}", blocks)


def backfill_summary(job_id: str, state: str, windows: Sequence[WindowSnap], reason: str | None,
                     story: Story | None = None) -> Message:
    took = [(w.finished - w.started).total_seconds() for w in windows if w.finished and w.started]
    done = [w for w in windows if w.state == "done"]
    customers = sorted({w.customer for w in windows})
    rows_total = sum(w.done for w in done)
    retries = sum(max(w.attempt - 1, 0) for w in windows)
    wall = (max(w.finished for w in windows if w.finished) - min(w.started for w in windows if w.started)
            ).total_seconds() if took else 0.0
    per_customer = []
    for c in customers:
        mine = [w for w in windows if w.customer == c]
        finished = sum(w.state == "done" for w in mine)
        per_customer.append([c, f"{finished}/{len(mine)}", f"{sum(w.done for w in mine):,}"])
    lines = render.table(["customer", "windows done", "conversations"], per_customer, right={1, 2}).split("\n")
    icon = {"done": ":white_check_mark:", "failed": ":x:", "cancelled": ":stop_button:"}.get(state, "")
    spread = f"min {duration(min(took))}, median {duration(median(took))}, max {duration(max(took))}" if took else "-"
    blocks = [
        header(f"Backfill {job_id} {state}"),
        fields([
            ("Customers", str(len(customers))), ("Windows", f"{len(done)} of {len(windows)} done"),
            ("Conversations", f"{rows_total:,}"),
            ("Window durations", spread),
            ("Retries", str(retries)),
            ("Throughput", f"{rows_total / wall:,.1f}/s over {duration(wall)}" if wall else "-"),
            *([("Workers", workers)] if (workers := worker_counts(done)) else []),
            *([("Planned vs actual", planned_vs_actual(story)),
               ("Parallelism", n_path(story) + (" (autopilot)" if story.autopilot else ""))] if story else []),
        ]),
        *table_sections(lines),
    ]
    if reason:
        blocks.append(section(f"{icon} {reason[:2900]}"))
    buttons = [button("Draft Linear write-up", "job.writeup", job_id)]
    if state in ("failed", "cancelled"):
        buttons.insert(0, button("Retry failed windows", "job.retry", job_id, "primary"))
    blocks.append(actions(*buttons))
    text = f"{icon} Backfill {job_id} {state}: {len(done)}/{len(windows)} windows, {rows_total:,} conversations"
    return Message(text, blocks)


def _on(workers: dict[str, list[str]] | None, cluster: str) -> str:
    ran = sorted(set((workers or {}).get(cluster, [])))
    return f" (on {', '.join(ran)})" if ran else ""


def worker_counts(windows: Sequence[WindowSnap]) -> str:
    """"2: 4012@host-a (3 windows), 977@host-b (2 windows)": which worker finished how many windows."""
    counts: dict[str, int] = {}
    for w in windows:
        if w.worker:
            counts[w.worker] = counts.get(w.worker, 0) + 1
    listed = ", ".join(f"{name} ({n} window{'s' if n > 1 else ''})" for name, n in sorted(counts.items()))
    return f"{len(counts)}: {listed}"[:1900] if counts else ""


def purge_summary(job_id: str, state: str, clusters: dict[str, tuple[int, int, int, int]],
                  reason: str | None, workers: dict[str, list[str]] | None = None) -> Message:
    """workers: cluster -> the worker of each of its finished chunks (shown when known)."""
    deleted = sum(v[2] for v in clusters.values())
    icons = {"done": ":white_check_mark:", "stopped": ":octagonal_sign:", "cancelled": ":stop_button:"}
    icon = icons.get(state, ":x:")
    lines = [f"{name}: {d}/{n} chunks, {rows:,} rows deleted{_on(workers, name)}"
             for name, (d, n, rows, _) in sorted(clusters.items())]
    blocks = [header(f"Purge {job_id} {state}"), section("\n".join(lines)[:2900])]
    if reason:
        blocks.append(section(f"{icon} {reason[:2900]}"))
    blocks.append(actions(button("Draft Linear write-up", "job.writeup", job_id)))
    return Message(f"{icon} Purge {job_id} {state}: {deleted:,} rows deleted", blocks)
