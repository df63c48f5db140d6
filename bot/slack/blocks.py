"""Block Kit messages for plans, approvals, jobs and help (built with slack_sdk's models)."""

from __future__ import annotations

from datetime import datetime

from bot.slack.messages import Message, actions, button, context, error, fields, header, section, table_sections
from commands import grammar, render
from commands.models import BackfillPlan, PurgePlan

TABLE_ROWS = 30  # customers listed by name; the rest are summed in one line
CHUNK_ROWS = 20  # chunks listed in a purge plan; the rest counted in one line


def _when(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def backfill_plan(plan: BackfillPlan, job_id: str, requester: str, *, title: str = "Backfill plan",
                  buttons: bool = True, footer: str | None = None, autopilot: bool = False) -> Message:
    customers = sorted(plan.customers, key=lambda c: -sum(w.conversations for w in c.windows))
    rows = [[c.customer, c.cluster, f"{c.daily_avg:,.0f}", f"{c.window_days}d", str(len(c.windows)),
             f"{sum(w.conversations for w in c.windows):,}",
             render.hours((sum(w.est_hours[0] for w in c.windows), sum(w.est_hours[1] for w in c.windows)))]
            for c in customers[:TABLE_ROWS]]
    rest = customers[TABLE_ROWS:]
    if rest:
        rows.append([f"+{len(rest)} more", "", "", "", str(sum(len(c.windows) for c in rest)),
                     f"{sum(w.conversations for c in rest for w in c.windows):,}", ""])
    head = ["customer", "cluster", "daily avg", "window", "windows", "conversations", "est."]
    lines = render.table(head, rows, right={2, 4, 5}).split("\n")
    warnings = [f":warning: {c.customer}: {w}" for c in plan.customers for w in c.warnings]
    blocks = [
        header(f"{title} {job_id}"),
        fields([
            ("Range", f"{plan.range.start} to {plan.range.end} ({plan.range.days} days)"),
            ("Windows", f"{len(plan.windows)} for {len(plan.customers)} customer(s)"),
            ("ETA", f"{render.hours(plan.makespan_hours)} at parallel {plan.parallel}"
                    + (" (parallel auto: the autopilot finds N from the windows' rates)" if autopilot else "")),
            ("Sequential", render.hours(plan.sequential_hours)),
            ("Lower bound", render.hours(plan.lower_bound_hours)),
            ("Conversations", f"{sum(w.conversations for w in plan.windows):,}"),
        ]),
        *table_sections(lines),
    ]
    if warnings:
        blocks.append(section("\n".join(warnings[:20])))
    if rates := render.rates_summary(plan):
        blocks.append(context(("R" + rates[1:])[:2900]))
    blocks += [context(n) for n in plan.notes]  # e.g. the range clipped to the days with data
    blocks.append(context(f"plan `{plan.plan_hash}` · requested by <@{requester}>"))
    if buttons:
        blocks.append(actions(button("Run", "backfill.run", job_id, "primary"),
                              button("Dismiss", "plan.dismiss", job_id)))
    if footer:
        blocks.append(context(footer))
    text = (f"{title} {job_id}: {len(plan.windows)} windows, {plan.range.start} to {plan.range.end}, "
            f"ETA {render.hours(plan.makespan_hours)}")
    return Message(text, blocks)


def purge_plan(plan: PurgePlan, job_id: str | None, requester: str, *, approval: str | None = None,
               buttons: bool = False, footer: str | None = None) -> Message:
    """The counts per cluster and customer, and the chunk plan; with Approve/Reject when `buttons`."""
    rows = []
    for cp in plan.clusters:
        per: dict[str, list[int]] = {}
        for ch in cp.chunks:
            entry = per.setdefault(ch.customer, [0, 0, 0, 0])
            entry[0 if ch.table == "scorecards" else 1] += ch.rows
            entry[2] += 1
            entry[3] += int(ch.over_cap)
        for customer, (cards, scores, chunks, over) in sorted(per.items(), key=lambda kv: -kv[1][1]):
            rows.append([cp.cluster, customer, f"{cards:,}", f"{scores:,}", str(chunks),
                         f"{over} over cap" if over else ""])
    shown = rows[:TABLE_ROWS]
    if len(rows) > TABLE_ROWS:
        shown.append([f"+{len(rows) - TABLE_ROWS} more", "", "", "", "", ""])
    lines = render.table(["cluster", "customer", "scorecards", "scores", "chunks", ""], shown,
                         right={2, 3, 4}).split("\n")
    n_chunks = sum(len(cp.chunks) for cp in plan.clusters)
    title = "Purge request" if buttons or approval else "Purge plan"
    blocks = [
        header(f"{title} {job_id or ''}".strip()),
        fields([
            ("Types", ",".join(map(str, plan.types))),
            ("Range", f"{plan.range.start} to {plan.range.end}"),
            ("Scorecards", f"{plan.total_scorecards:,}"),
            ("Scores", f"{plan.total_scores:,}"),
            ("Chunks", f"{render.mutations_line(plan)} on {len(plan.clusters)} cluster(s), scores before scorecards"),
            ("Cap", f"{plan.max_rows_per_mutation:,} rows per mutation"),
        ]),
        *table_sections(lines),
        *[context(n) for n in plan.notes],
        # each chunk (one mutation): partition, day span, rows, and the keys where it cuts a day
        *table_sections(render.chunk_table(plan, limit=CHUNK_ROWS).split("\n")),
        context(f"plan `{plan.plan_hash}` · requested by <@{requester}>"),
    ]
    if approval:
        blocks.append(section(approval))
    if buttons:
        value = f"{job_id}:{plan.plan_hash}"
        blocks.append(actions(button("Approve", "purge.approve", value, "danger"),
                              button("Reject", "purge.reject", value)))
    if footer:
        blocks.append(context(footer))
    text = (f"{title} {job_id or ''}: {plan.total_scorecards:,} scorecards and {plan.total_scores:,} scores "
            f"in {n_chunks} chunks")
    return Message(text, blocks)


def approval_wait(requester: str, needed: int, have: list[str], expires: datetime) -> str:
    got = f" Approved so far by {', '.join(f'<@{u}>' for u in have)}." if have else ""
    return (f":lock: Needs {needed} approval(s) from approvers other than <@{requester}>; "
            f"expires {_when(expires)}.{got}")


def job_started(kind: str, job_id: str, requester: str, summary: str, at: datetime,
                start_at: datetime | None = None) -> Message:
    state = f"waiting until {_when(start_at)}" if start_at else "running"
    text = f"{kind.capitalize()} {job_id} {state}: {summary}"
    return Message(text, [
        header(f"{kind.capitalize()} {job_id}"),
        fields([("State", state), ("Requested by", f"<@{requester}>")]),
        section(summary),
        context(f"started {_when(at)} · progress is posted in this thread"),
    ])


def confirm(job_id: str, action: str, question: str) -> Message:
    return Message(question, [
        section(question),
        actions(button(f"Yes, {action} {job_id}", f"job.{action}", job_id, "danger"),
                button("No", "job.keep", job_id)),
    ])


def help_message() -> Message:
    lines = grammar.help_text(None).split("\n")
    return Message("Shepherd commands", [
        header("Shepherd commands"),
        *table_sections(lines),
        context("Dates are YYYY-MM-DD; customers are names, a comma list, or all; "
                "JOB is a short id like b-7f3a2c. Every command answers `help`."),
    ])


__all__ = ["Message", "approval_wait", "backfill_plan", "confirm", "error", "help_message", "job_started",
           "purge_plan"]
