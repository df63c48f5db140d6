"""Block Kit for `/backfill status JOB` extras (failures, verifications) and job lists (`/shepherd jobs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot.jobs.records import JobRow
from bot.slack.messages import MAX_BLOCKS, Message, actions, button, context, header, section, table_sections
from bot.temporal.models import BackfillProgress
from commands import render

BAR = 12


def bar(done: int, total: int) -> str:
    frac = min(done / total, 1.0) if total else 0.0
    full = round(frac * BAR)
    return "█" * full + "░" * (BAR - full) + f" {frac:4.0%}"


def with_failures(msg: Message, p: BackfillProgress) -> Message:
    """`msg` with the job's failed windows (attempt, last failure) appended, for `/backfill status JOB`."""
    failed = [w for w in p.windows if w.state == "failed" or (w.state == "running" and w.last_failure)]
    if not failed:
        return msg
    rows = [[w.customer, f"{w.start}..{w.end}", w.state, str(w.attempt), (w.last_failure or "")[:80]]
            for w in sorted(failed, key=lambda w: (w.state != "failed", w.customer, w.start))]
    lines = render.table(["customer", "window", "state", "try", "last failure"], rows, right={3}).split("\n")
    room = MAX_BLOCKS - len(msg.blocks) - 1
    extra = table_sections(lines, f"_{len(rows)} windows failed or retrying_")[:max(room, 0)]
    return Message(msg.text, [*msg.blocks[:-1], *extra, msg.blocks[-1]])


def verification(job_id: str, state: str, requester: str, report: dict[str, Any], params: dict[str, Any]) -> Message:
    """A recorded verification (`v-` job): its verdict, counts and the first mismatches."""
    icon = ":white_check_mark:" if state == "done" else ":warning:"
    linked = f" of `{params['job']}`" if params.get("job") else ""
    lines = [f"{icon} {report.get('verdict', state)}",
             f"{report.get('checked', 0)} customers checked, {report.get('matching', 0)} matching, "
             f"{report.get('mismatching', 0)} mismatching; {report.get('from')}..{report.get('to')}"]
    rows = [[m["customer"], m["day"], m["table"], f"{m['postgres']:,}", f"{m['clickhouse']:,}", f"{m['difference']:+,}"]
            for m in report.get("mismatches", [])]
    blocks: list[Block] = [header(f"Verification {job_id}{linked}"), section("\n".join(lines)[:2900])]
    if rows:
        table = render.table(["customer", "day", "table", "postgres", "clickhouse", "diff"], rows, right={3, 4, 5})
        more = report.get("mismatches_not_listed", 0)
        blocks += table_sections(table.split("\n"), f"_and {more:,} more_" if more else None)
    blocks.append(context(f"requested by <@{requester}>"))
    return Message(f"Verification {job_id}: {state}", blocks)


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
