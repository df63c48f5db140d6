"""The weekly summary in the seed's own shape (title, Progress, Problems, Plan), from plain records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from commands.verify_report import types_text
from commands.writeup import JobInfo, Records, _span, approx, incidents


@dataclass(frozen=True)
class WeeklyInput:
    start: date
    end: date
    records: Records
    open_jobs: tuple[JobInfo, ...] = ()
    unposted: tuple[tuple[str, str], ...] = ()  # (draft id, ticket) of write-ups not posted yet
    team: str | None = None


def render_weekly(w: WeeklyInput) -> str:
    r = w.records
    days = [d for j in r.jobs for d in (j.started_at, j.finished_at) if d is not None]
    start, end = (min(days).date(), max(days).date()) if days else (w.start, w.end)
    progress: list[str] = []
    if r.purges:
        cards = sum(c.scorecards for p in r.purges for c in p.clusters)
        scores = sum(c.scores for p in r.purges for c in p.clusters)
        clusters = {c.cluster for p in r.purges for c in p.clusters}
        one_day = [f"{n} ({k} one-day chunks)" for p in r.purges for c in p.clusters for n, k in c.one_day]
        text = (f"Deleted {approx(cards)} scorecards + {approx(scores)} scores (types "
                f"{types_text(r.purges[0].types)}) from ClickHouse across {len(clusters)} clusters "
                f"({', '.join(p.job_id for p in r.purges)}).")
        if one_day:
            text += f" Chunked deletes for {', '.join(one_day)} due to mutation size."
        progress.append(f"- **Appeal cleanup (purge):** {text}")
    if r.backfills:
        done = sum(1 for c in r.backfills if all(x.state == "done" for x in c.windows))
        windows = [x for c in r.backfills for x in c.windows]
        failed = sum(1 for x in windows if x.state in ("failed", "cancelled"))
        sizes = sorted({c.window_days for c in r.backfills})
        ends = [j.finished_at for j in r.jobs if j.kind == "backfill" and j.finished_at]
        when = f" All completed by {max(ends):%b} {max(ends).day}" if ends and done == len(r.backfills) else ""
        tail = f" with {failed or 'zero'} failures." if when else f"; {failed} windows failed."
        progress.append(f"- **Backfill:** Backfilled {done}/{len(r.backfills)} customers in {len(windows)} windows "
                        f"({'/'.join(f'{d}d' for d in sizes)} windows by volume).{when}{tail}")
    for v in r.verifications:
        progress.append(f"- **Verification ({v.job_id}):** {v.verdict}")
    problems = [f"- **{label}:** {text}" for label, text in incidents(r)]
    plan = [f"- **Linear:** Post the write-up for {t} (draft {d} is not posted yet)." for d, t in w.unposted]
    plan += [f"- **{j.kind.capitalize()} {j.id}:** still {j.state}: {j.summary}" for j in w.open_jobs]
    plan.append("- **Next:** (add the rest of next week's plan)")
    team = f" ({w.team})" if w.team else ""
    return "\n".join([
        f"Weekly Summary{team}: {_span(start, end)}", "", "Progress", "",
        *(progress or ["- **Shepherd jobs:** none finished this week."]), "", "Problems", "",
        *(problems or ["- **None recorded:** every job ran without failures, retries or alerts."]), "", "Plan", "",
        *plan,
    ]) + "\n"
