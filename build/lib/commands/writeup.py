"""The Linear write-up of finished jobs, and the weekly summary, rendered as Markdown from plain records.

`bot/writeups/service.py` reads the records from Postgres; everything here is pure: the records, and the
write-up assembled from the sections in `commands.writeup_sections` (deletions per cluster,
backfilled customers and their windows, failures and what resolved them, region fallbacks and
verifications). The weekly summary (`commands.weekly`) keeps the seed's own shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from commands.writeup_sections import (
    approx,
    backfills_section,
    deletions,
    duration,
    incidents,
    md_table,
    stamp,
    verifications_section,
)
from commands.writeup_sections import span as _span

__all__ = ["ActionInfo", "ClusterDeletion", "CustomerBackfill", "EventInfo", "JobInfo", "PurgeInfo", "Records",
           "VerificationInfo", "WindowRun", "_span", "approx", "duration", "headline", "incidents", "render_writeup"]

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


# ---- the write-up for a ticket ----------------------------------------------------------------


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
    rows = [[j.id, j.kind, j.requester, j.state, stamp(j.started_at or j.created_at), stamp(j.finished_at),
             duration((j.finished_at - (j.started_at or j.created_at)).total_seconds()) if j.finished_at else "-"]
            for j in r.jobs]
    found = incidents(r)
    lines = [f"## Shepherd write-up for {ticket}", "",
             f"**Summary:** {headline(r)}.", "",
             "### Jobs", "", *md_table(["job", "kind", "requested by", "state", "started (UTC)", "finished (UTC)",
                                        "took"], rows), "",
             *deletions(r.purges), *backfills_section(r.backfills),
             "### Failures, retries and what resolved them", ""]
    lines += [f"- {text}" for _, text in found] or ["- None: every window and chunk finished on its first attempt."]
    lines += ["", *verifications_section(r.verifications),
              f"_Drafted by Shepherd from {', '.join(j.id for j in r.jobs) or 'no jobs'}._"]
    return "\n".join(lines).rstrip() + "\n"
