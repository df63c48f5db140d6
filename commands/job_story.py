"""What a finished backfill did against its plan: each window's planned hours beside the hours it took, and
the job's parallelism over time (the N it was allowed, the windows that really ran).

Pure: the monitor passes the stored plan (its JSON), the windows as Temporal reports them and the job's
changes of N. The summary's lines and the chart posted in the job's thread (bot/backfill/chart.py) are
both drawn from one `Story`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from commands.progress import WindowSnap, duration


@dataclass(frozen=True)
class NChange:
    at: datetime
    from_n: int
    to_n: int
    by: str  # autopilot | hand


@dataclass(frozen=True)
class WindowOutcome:
    key: str
    customer: str
    start: str
    end: str
    state: str
    planned_h: tuple[float, float] | None  # (optimistic, pessimistic) hours the plan gave it
    actual_h: float | None  # from its start to its finish; None: it never ran to an end
    started_s: float | None  # seconds after the job's first window started

    @property
    def verdict(self) -> str:
        """within | slower | faster | unknown (no plan or no finish)."""
        if self.planned_h is None or self.actual_h is None or self.state != "done":
            return "unknown"
        lo, hi = self.planned_h
        return "slower" if self.actual_h > hi else "faster" if self.actual_h < lo else "within"


@dataclass(frozen=True)
class Story:
    job_id: str
    began: datetime | None  # the first window's start
    wall_s: float  # the first window's start to the last window's finish
    planned_wall_h: tuple[float, float] | None  # the plan's makespan at `planned_n`
    planned_n: int
    windows: tuple[WindowOutcome, ...]  # in the order they started
    allowed: tuple[tuple[float, int], ...]  # (seconds after `began`, N from then on)
    running: tuple[tuple[float, int], ...]  # (seconds after `began`, windows running from then on)
    autopilot: bool  # whether the autopilot set N at any time

    def counts(self) -> dict[str, int]:
        out = {"within": 0, "slower": 0, "faster": 0, "unknown": 0}
        for w in self.windows:
            out[w.verdict] += 1
        return out


def _planned(plan: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for c in plan.get("customers", []) or []:
        for w in c.get("windows", []) or []:
            est: Sequence[Any] = w.get("est_hours") or ()
            if len(est) == 2:
                out[f"{w['customer']}:{w['start']}:{w['end']}"] = (float(est[0]), float(est[1]))
    return out


def story(job_id: str, plan: Mapping[str, Any], windows: Sequence[WindowSnap], changes: Sequence[NChange],
          parallel: int, autopilot: bool) -> Story:
    """`parallel`: the job's N at its end (its N throughout when nothing changed it)."""
    planned = _planned(plan)
    ran = [w for w in windows if w.started is not None]
    began = min((w.started for w in ran if w.started), default=None)
    ends = [w.finished for w in ran if w.finished]
    wall = (max(ends) - began).total_seconds() if began and ends else 0.0

    def since(t: datetime) -> float:
        return max((t - began).total_seconds(), 0.0) if began else 0.0

    outcomes = tuple(WindowOutcome(
        w.key, w.customer, w.start, w.end, w.state, planned.get(w.key),
        (w.finished - w.started).total_seconds() / 3600 if w.finished and w.started else None,
        since(w.started) if w.started else None) for w in sorted(ran, key=lambda w: (w.started, w.key)))
    first_n = changes[0].from_n if changes else parallel
    allowed = [(0.0, first_n)] + [(since(c.at), c.to_n) for c in sorted(changes, key=lambda c: c.at)]
    edges = sorted([(since(w.started), 1) for w in ran if w.started]
                   + [(since(w.finished), -1) for w in ran if w.finished])
    running: list[tuple[float, int]] = []
    level = 0
    for at, step in edges:
        level += step
        if running and running[-1][0] == at:
            running[-1] = (at, level)
        else:
            running.append((at, level))
    makespan = plan.get("makespan_hours")
    return Story(job_id, began, wall, (float(makespan[0]), float(makespan[1])) if makespan else None,
                 int(plan.get("parallel", parallel) or parallel), outcomes, tuple(allowed), tuple(running),
                 autopilot or any(c.by == "autopilot" for c in changes))


def n_path(s: Story, limit: int = 12) -> str:
    """"2 -> 3 -> 5 -> 4": the N the job was allowed, in order (the first and last `limit` when long)."""
    ns = [n for _, n in s.allowed]
    path = [n for i, n in enumerate(ns) if i == 0 or n != ns[i - 1]]
    if len(path) > limit:
        return " -> ".join(map(str, path[:limit // 2])) + " -> ... -> " + " -> ".join(map(str, path[-limit // 2:]))
    return " -> ".join(map(str, path))


def planned_vs_actual(s: Story) -> str:
    """One line for the summary: the job's wall time against the plan's, and how many windows kept their estimate."""
    c = s.counts()
    judged = c["within"] + c["slower"] + c["faster"]
    parts = []
    if s.wall_s > 0:
        took = f"took {duration(s.wall_s)}"
        if s.planned_wall_h is not None:
            lo, hi = s.planned_wall_h
            took += f" (planned {duration(lo * 3600)} to {duration(hi * 3600)} at {s.planned_n} at once)"
        parts.append(took)
    if judged:
        parts.append(f"{c['within']} of {judged} windows within their estimate"
                     + (f", {c['slower']} slower" if c["slower"] else "")
                     + (f", {c['faster']} faster" if c["faster"] else ""))
    return "; ".join(parts) or "-"
