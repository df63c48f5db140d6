"""The Linear write-up of finished jobs, and the weekly summary, rendered as Markdown from plain records.

`bot/writeups.py` reads the records from Postgres; everything here is pure: what to say about
deletions per cluster, backfilled customers and their windows, failures and what resolved them,
region fallbacks and verifications. The weekly summary keeps the seed's own shape: a title line,
then Progress, Problems and Plan, one bold-labelled bullet each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from commands.verify_report import types_text

TOP_CUSTOMERS = 15  # customers listed one by one in the backfill table; the rest share one row
ACTION_WORDS = ("retry", "throttle", "cancel", "pause", "resume", "release")  # acts that answer a problem
# Monitor events worth a line, by a word in their key (events_posted.event_key; other keys are routine)
EVENT_WORDS = (("stall", "Stall"), ("contention", "Contention"), ("fallback", "Cluster lookup fallback"),
               ("lookup", "Cluster lookup fallback"), ("fail", "Failure"))


@dataclass(frozen=True)
class JobInfo:
    id: str
    kind: str  # backfill | purge | verify
    requester: str
    state: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: str  # one line about its plan
    error: str | None = None


@dataclass(frozen=True)
class ClusterDeletion:
    cluster: str
    scorecards: int
    scores: int
    chunks: int
    chunks_done: int
    exact: bool  # rows the job counted as deleted; False: the planned rows
    one_day: tuple[tuple[str, int], ...] = ()  # customers cut into one-day chunks: (name, chunks)


@dataclass(frozen=True)
class PurgeInfo:
    job_id: str
    start: date
    end: date
    types: tuple[int, ...]
    max_rows: int
    clusters: tuple[ClusterDeletion, ...]
    stop_reason: str | None = None
    failed_chunks: tuple[str, ...] = ()  # "cluster customer table start..end: reason"


@dataclass(frozen=True)
class WindowRun:
    start: date
    end: date
    state: str  # done | failed | cancelled | running | pending | planned
    conversations: int
    seconds: float | None = None
    attempts: int = 1
    last_failure: str | None = None
    region: str | None = None
    resumed_from: str | None = None


@dataclass(frozen=True)
class CustomerBackfill:
    job_id: str
    customer: str
    cluster: str
    window_days: int
    rule: str
    windows: tuple[WindowRun, ...]

    @property
    def conversations(self) -> int:
        return sum(w.conversations for w in self.windows)


@dataclass(frozen=True)
class VerificationInfo:
    job_id: str
    at: datetime
    checked: int
    matching: int
    mismatching: int
    ok: bool
    verdict: str
    sample: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ActionInfo:
    """A person's act on a job, from the audit log (approve, retry, throttle, cancel ...)."""

    at: datetime
    actor: str
    action: str
    job_id: str | None
    outcome: str


@dataclass(frozen=True)
class EventInfo:
    """A thread event the monitor posted (shepherd.events_posted)."""

    at: datetime
    job_id: str
    key: str


@dataclass(frozen=True)
class Records:
    jobs: tuple[JobInfo, ...]
    purges: tuple[PurgeInfo, ...] = ()
    backfills: tuple[CustomerBackfill, ...] = ()
    verifications: tuple[VerificationInfo, ...] = ()
    actions: tuple[ActionInfo, ...] = ()
    events: tuple[EventInfo, ...] = ()
    first_regions: Mapping[str, str] = field(default_factory=dict)  # cluster -> its preferred region


# ---- numbers ----------------------------------------------------------------------------------


def approx(n: int) -> str:
    """70_512_345 -> "~70.5M"."""
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= size:
            return f"~{n / size:.1f}{unit}"
    return str(n)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def _stamp(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "-"


def _span(a: date, b: date) -> str:
    """Feb 21–23, 2026 (the seed's title style)."""
    if a.year == b.year and a.month == b.month:
        return f"{a:%b} {a.day}" + (f"–{b.day}" if b != a else "") + f", {a.year}"
    if a.year == b.year:
        return f"{a:%b} {a.day} – {b:%b} {b.day}, {a.year}"
    return f"{a:%b} {a.day}, {a.year} – {b:%b} {b.day}, {b.year}"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = lambda r: "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"  # noqa: E731
    return [cells(head), "|" + "|".join("---" for _ in head) + "|", *(cells(r) for r in rows)]


# ---- what went wrong, and what resolved it ----------------------------------------------------


def incidents(r: Records) -> list[tuple[str, str]]:
    """(label, text) of failures, retries, fallbacks, stops, alerts and the acts that answered them,
    each with its resolution where there is one."""
    out: list[tuple[str, str]] = []
    for c in r.backfills:
        for w in c.windows:
            where = f"**{c.customer}** {w.start}..{w.end} ({c.job_id})"
            if w.attempts > 1 and w.state == "done":
                how = f"resumed from {w.resumed_from}" if w.resumed_from else "ran again"
                why = f" ({w.last_failure})" if w.last_failure else ""
                out.append(("Retried window", f"{where}: failed {w.attempts - 1}x{why}; resolved: attempt "
                                              f"{w.attempts} {how} and finished."))
            elif w.state in ("failed", "cancelled"):
                why = f": {w.last_failure}" if w.last_failure else ""
                out.append(("Failed window", f"{where}: {w.state} after {w.attempts} attempt(s){why}; unresolved: "
                                             f"`/backfill retry {c.job_id} --failed-only`."))
            first = r.first_regions.get(c.cluster)
            if w.region and first and w.region != first:
                out.append(("Cluster lookup fallback", f"{where}: cluster {c.cluster} answered from region "
                                                       f"{w.region} (fallback from {first})."))
    for p in r.purges:
        out += [("Purge chunk failed", f"purge {p.job_id}: chunk {f}") for f in p.failed_chunks]
        if p.stop_reason:
            out.append(("Purge stopped", f"purge {p.job_id} stopped: {p.stop_reason}"))
    for j in r.jobs:
        if j.error and j.kind != "verify":
            out.append((f"{j.kind.capitalize()} {j.state}", f"{j.kind} {j.id} ended {j.state}: {j.error}"))
    for e in r.events:
        label = next((label for word, label in EVENT_WORDS if word in e.key), None)
        if label:
            out.append((label, f"{e.job_id}: {e.key.replace('_', ' ').replace(':', ' ')} ({_stamp(e.at)} UTC)"))
    for a in r.actions:
        if any(word in a.action for word in ACTION_WORDS):
            what = a.action.replace("click job.", "clicked ").strip()
            on = f" on {a.job_id}" if a.job_id and a.job_id not in what else ""
            out.append(("Action taken", f"{a.actor}: `{what}`{on} ({_stamp(a.at)} UTC)"))
    return out


# ---- the write-up for a ticket ----------------------------------------------------------------


def _deletions(purges: Sequence[PurgeInfo]) -> list[str]:
    if not purges:
        return []
    per: dict[str, list[int]] = {}
    exact = all(c.exact for p in purges for c in p.clusters)
    for p in purges:
        for c in p.clusters:
            e = per.setdefault(c.cluster, [0, 0, 0, 0])
            e[0] += c.scorecards
            e[1] += c.scores
            e[2] += c.chunks_done
            e[3] += c.chunks
    rows = [[k, f"{v[0]:,}", f"{v[1]:,}", f"{v[2]}/{v[3]}"] for k, v in sorted(per.items())]
    cards, scores = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    done, total = sum(v[2] for v in per.values()), sum(v[3] for v in per.values())
    rows.append(["**total**", f"**{cards:,}**", f"**{scores:,}**", f"{done}/{total}"])
    p0 = purges[0]
    lines = ["### Deleted from ClickHouse", "",
             f"Appeal types {types_text(p0.types)}, {p0.start} to {p0.end}, at most {p0.max_rows:,} rows per "
             f"mutation ({', '.join(p.job_id for p in purges)})" + ("." if exact else "; planned counts: the job's "
                                                                     "own counts were not available."),
             "", *_md_table(["cluster", "scorecards", "scores", "chunks done"], rows)]
    lines.append("")
    for p in purges:
        for c in p.clusters:
            for name, n in c.one_day:
                lines.append(f"- {name} ({c.cluster}) needed {n} one-day chunks: a larger mutation would pass the "
                             "row cap.")
    return [*lines, ""]


def _backfills(backfills: Sequence[CustomerBackfill]) -> list[str]:
    if not backfills:
        return []
    ordered = sorted(backfills, key=lambda c: (-c.conversations, c.customer))
    windows = [w for c in ordered for w in c.windows]
    states: dict[str, int] = {}
    for w in windows:
        states[w.state] = states.get(w.state, 0) + 1
    done = sum(1 for c in ordered if all(w.state == "done" for w in c.windows))

    def row(name: str, cluster: str, size: str, group: Sequence[WindowRun]) -> list[str]:
        secs = [w.seconds for w in group if w.seconds is not None]
        span = "?" if not secs else duration(secs[0]) if min(secs) == max(secs) else (
            f"{duration(min(secs))}–{duration(max(secs))}")
        return [name, cluster, size, str(len(group)), f"{sum(w.conversations for w in group):,}", span,
                str(sum(w.attempts - 1 for w in group))]

    rows = [row(c.customer, c.cluster, f"{c.window_days}d ({c.rule})", c.windows) for c in ordered[:TOP_CUSTOMERS]]
    rest = ordered[TOP_CUSTOMERS:]
    if rest:
        sizes = sorted({c.window_days for c in rest})
        rows.append(row(f"+{len(rest)} more customers", "", "/".join(f"{d}d" for d in sizes),
                        [w for c in rest for w in c.windows]))
    jobs = sorted({c.job_id for c in backfills})
    return ["### Backfilled", "",
            f"{done}/{len(ordered)} customers complete, {len(windows)} windows "
            f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); jobs {', '.join(jobs)}.", "",
            *_md_table(["customer", "cluster", "window", "windows", "conversations", "duration per window",
                        "retries"], rows), ""]


def _verifications(vs: Sequence[VerificationInfo]) -> list[str]:
    if not vs:
        return ["### Verification", "", "Not verified yet: run `/verify <customers|all|sample:N>` and draft again.",
                ""]
    lines = ["### Verification", ""]
    for v in vs:
        sample = f" (random sample, seed {v.seed})" if v.sample is not None else ""
        lines.append(f"- {v.job_id} ({_stamp(v.at)} UTC){sample}: {v.verdict}")
    return [*lines, ""]


def headline(r: Records) -> str:
    parts = []
    cards = sum(c.scorecards for p in r.purges for c in p.clusters)
    scores = sum(c.scores for p in r.purges for c in p.clusters)
    if r.purges:
        clusters = {c.cluster for p in r.purges for c in p.clusters}
        parts.append(f"deleted {cards:,} appeal scorecards ({approx(cards)}) and {scores:,} scores ({approx(scores)}) "
                     f"from {len(clusters)} ClickHouse cluster(s)")
    if r.backfills:
        done = sum(1 for c in r.backfills if all(w.state == "done" for w in c.windows))
        parts.append(f"backfilled {done}/{len(r.backfills)} customers in {sum(len(c.windows) for c in r.backfills)} "
                     "windows")
    if r.verifications:
        last = r.verifications[-1]
        parts.append(f"verification {last.job_id}: {last.matching}/{last.checked} customers match"
                     + ("" if last.ok else f", {last.mismatching} differ"))
    return "; ".join(parts) or "no finished jobs in this write-up"


def render_writeup(ticket: str, r: Records) -> str:
    rows = [[j.id, j.kind, j.requester, j.state, _stamp(j.started_at or j.created_at), _stamp(j.finished_at),
             duration((j.finished_at - (j.started_at or j.created_at)).total_seconds()) if j.finished_at else "-"]
            for j in r.jobs]
    found = incidents(r)
    lines = [f"## Shepherd write-up for {ticket}", "",
             f"**Summary:** {headline(r)}.", "",
             "### Jobs", "", *_md_table(["job", "kind", "requested by", "state", "started (UTC)", "finished (UTC)",
                                         "took"], rows), "",
             *_deletions(r.purges), *_backfills(r.backfills),
             "### Failures, retries and what resolved them", ""]
    lines += [f"- {text}" for _, text in found] or ["- None: every window and chunk finished on its first attempt."]
    lines += ["", *_verifications(r.verifications),
              f"_Drafted by Shepherd from {', '.join(j.id for j in r.jobs) or 'no jobs'}._"]
    return "\n".join(lines).rstrip() + "\n"
