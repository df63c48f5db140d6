"""Block Kit for job progress (`/backfill status JOB`) and job lists (`/shepherd jobs`)."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.job_records import JobRow
from bot.slack.messages import Message, actions, button, context, fields, header, section, table_sections
from bot.temporal.models import BackfillProgress, PurgeProgress
from commands import render

BAR = 12


def bar(done: int, total: int) -> str:
    frac = min(done / total, 1.0) if total else 0.0
    full = round(frac * BAR)
    return "█" * full + "░" * (BAR - full) + f" {frac:4.0%}"


def backfill_progress(p: BackfillProgress, requester: str | None = None) -> Message:
    done = sum(w.done for w in p.windows)
    total = sum(w.total for w in p.windows) or sum(1 for _ in p.windows)
    states: dict[str, int] = {}
    for w in p.windows:
        states[w.state] = states.get(w.state, 0) + 1
    rows = [[w.customer, f"{w.start}..{w.end}", w.state, str(w.attempt), f"{w.done:,}/{w.total:,}",
             bar(w.done, w.total), (w.last_failure or "")[:60]]
            for w in sorted(p.windows, key=lambda w: (w.state != "running", w.state != "failed", w.customer, w.start))]
    lines = render.table(["customer", "window", "state", "try", "done/total", "progress", "last failure"], rows,
                         right={3, 4}).split("\n")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    blocks = [
        header(f"Backfill {p.job_id}: {p.state}"),
        fields([("Windows", summary), ("Overall", bar(done, total)), ("Parallel", str(p.parallel)),
                ("Run", str(p.run))] + ([("Requested by", f"<@{requester}>")] if requester else [])),
        *table_sections(lines, f"_{len(rows)} windows in all; the running and failed ones are listed first_"),
    ]
    return Message(f"Backfill {p.job_id}: {p.state}, {summary}", blocks)


def purge_progress(p: PurgeProgress, requester: str | None = None) -> Message:
    rows = []
    for cluster, chunks in sorted(p.clusters.items()):
        states: dict[str, int] = {}
        for c in chunks:
            states[c.state] = states.get(c.state, 0) + 1
        deleted = sum(c.rows_deleted for c in chunks)
        planned = sum(c.rows for c in chunks)
        rows.append([cluster, ", ".join(f"{n} {s}" for s, n in sorted(states.items())), f"{deleted:,}/{planned:,}",
                     bar(deleted, planned)])
    lines = render.table(["cluster", "chunks", "rows deleted", "progress"], rows, right={2}).split("\n")
    blocks = [header(f"Purge {p.job_id}: {p.state}"), *table_sections(lines)]
    if p.stop_reason:
        blocks.append(section(f":octagonal_sign: {p.stop_reason}"))
    if requester:
        blocks.append(context(f"requested by <@{requester}>"))
    return Message(f"Purge {p.job_id}: {p.state}", blocks)


def jobs_list(jobs: Sequence[JobRow], links: dict[str, str]) -> Message:
    if not jobs:
        return Message("No jobs yet", [section("No jobs yet. Start with `/backfill plan <customers>`.")])
    lines = []
    for j in jobs:
        link = f"<{links[j.id]}|{j.id}>" if j.id in links else f"`{j.id}`"
        when = f"{j.created_at:%Y-%m-%d %H:%M}"
        lines.append(f"{link} {j.kind} · *{j.state.replace('_', ' ')}* · <@{j.requester}> · {when}"
                     + (f" · {j.error[:80]}" if j.error else ""))
    blocks: list[Block] = [header("Shepherd jobs")]
    for start in range(0, len(lines), 20):
        blocks.append(section("\n".join(lines[start:start + 20])))
    blocks.append(context("open jobs first, then the most recent; `/backfill status JOB` for details"))
    return Message(f"{len(jobs)} jobs", blocks)


def job_controls(job_id: str, kind: str, state: str) -> Message:
    """Buttons to act on a job from its thread (slash commands cannot be typed in threads)."""
    buttons = []
    if state in ("running", "waiting"):
        buttons += [button("Pause", "job.pause", job_id), button("Cancel…", "job.ask_cancel", job_id, "danger")]
    elif state == "paused":
        buttons += [button("Resume", "job.resume", job_id), button("Cancel…", "job.ask_cancel", job_id, "danger")]
    elif kind == "backfill" and state in ("failed", "cancelled"):
        buttons.append(button("Retry failed windows", "job.retry", job_id, "primary"))
    text = f"Controls for {job_id}"
    return Message(text, [section(text), actions(*buttons)] if buttons else [section(text)])
