"""A running job's figures, as the status message shows them: per-window smoothed rates, percent, ETA range.

One place computes them, so the monitor's status message and `/backfill status JOB` show the same
numbers. A running window's ETA range comes from its own recent rates, widened towards the rates its
customer's past windows ran at (commands/progress.py `window_eta`). The monitor records a progress
sample each tick (`record=True`); a status command only reads the samples, so asking often does not
skew the rates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.backfill.rate_history import past_windows
from bot.slack import status_blocks
from bot.slack.messages import Message
from bot.temporal.models import BackfillProgress, PurgeProgress
from commands.estimates import learned_rates
from commands.progress import WindowRate, WindowSnap, eta_range, window_rate

SAMPLES_KEPT_S = 3 * 3600
SAMPLES_USED = 20  # the smoothing weighs older ones by less than 2**-20
Clusters = dict[str, tuple[int, int, int, int]]  # name -> (chunks done, chunks, rows deleted, rows planned)


@dataclass(frozen=True)
class BackfillView:
    snaps: list[WindowSnap]
    rates: dict[str, WindowRate]
    figures: status_blocks.JobFigures


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def snapshots(p: BackfillProgress) -> list[WindowSnap]:
    return [WindowSnap(w.key, w.customer, w.cluster, w.start, w.end, w.state, w.attempt, w.done, w.total,
                       _at(w.started), _at(w.finished), w.last_failure, w.region, _at(w.heartbeat_at),
                       w.worker)
            for w in p.windows]


def purge_clusters(p: PurgeProgress) -> Clusters:
    return {name: (sum(c.state == "done" for c in chunks), len(chunks), sum(c.rows_deleted for c in chunks),
                   sum(c.rows for c in chunks)) for name, chunks in p.clusters.items()}


class JobViews:
    def __init__(self, pool: Any, windows_listed: int, stall_s: float | None = None) -> None:
        self.pool = pool
        self.windows_listed = windows_listed
        self.stall_s = stall_s  # a window without a heartbeat for this long counts as not moving

    def backfill(self, job_id: str, plan: dict[str, Any], p: BackfillProgress, *, record: bool,
                 now: datetime | None = None) -> BackfillView:
        """Blocking (Postgres): call it in a thread from async code."""
        snaps = snapshots(p)
        running = [s for s in snaps if s.state == "running"]
        samples = self._samples(job_id, running if record else [], now)
        history = self._history(sorted({s.customer for s in running}))
        rates = {s.key: window_rate(samples.get(s.key, []), s.total, history.get(s.customer), s.done)
                 for s in running}
        if now is not None and self.stall_s is not None:
            for s in running:  # its last rate would promise an ETA it is not keeping
                if s.heartbeat_at is not None and (now - s.heartbeat_at).total_seconds() >= self.stall_s:
                    rates[s.key] = WindowRate(0.0, None)
        planned = {f"{w['customer']}:{w['start']}:{w['end']}": int(w.get("conversations", 0))
                   for c in plan.get("customers", []) for w in c.get("windows", [])}
        total = sum(s.total or planned.get(s.key, 0) for s in snaps)
        done = sum(s.done for s in snaps)
        live = [r.rate for r in rates.values() if r.rate]
        rate = sum(live) if live else None
        eta = eta_range(total - done, [rate * 0.8, rate] if rate else [])
        figures = status_blocks.JobFigures(min(100 * done / total, 100.0) if total else 0.0, done, total, rate, eta)
        return BackfillView(snaps, rates, figures)

    def backfill_status(self, job_id: str, requester: str, plan: dict[str, Any], p: BackfillProgress,
                        now: datetime, *, record: bool = False) -> tuple[BackfillView, Message]:
        view = self.backfill(job_id, plan, p, record=record, now=now)
        at_once = f"{p.parallel} at once" + (" (autopilot)" if p.autopilot else "")
        return view, status_blocks.backfill_status(job_id, requester, p.state, view.snaps, view.rates, view.figures,
                                                   now, self.windows_listed, at_once=at_once)

    @staticmethod
    def purge_status(job_id: str, requester: str, p: PurgeProgress, now: datetime) -> Message:
        return status_blocks.purge_status(job_id, requester, p.state, purge_clusters(p), now, p.stop_reason)

    def _history(self, customers: list[str]) -> dict[str, tuple[float, float]]:
        """Per customer with enough finished windows kept: the rate range they ran at, per second."""
        if not customers:
            return {}
        learned = learned_rates(past_windows(self.pool, customers))
        return {c: (lr.throughput.low / 3600, lr.throughput.high / 3600) for c, lr in learned.items()}

    def _samples(self, job_id: str, running: list[WindowSnap], now: datetime | None
                 ) -> dict[str, list[tuple[datetime, int]]]:
        """Each window's recent samples, oldest first, after storing the new readings among `running`.

        A reading is stored at its heartbeat's time (the tick's time if unknown), and only once: rates
        are progress over heartbeat time, however often the monitor ticks or a status is asked for.
        """
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT window_key, at, done FROM (SELECT window_key, at, done, row_number() OVER"
                " (PARTITION BY window_key ORDER BY at DESC) AS n FROM shepherd.progress_samples"
                " WHERE job_id = %s AND at > now() - make_interval(secs => %s)) recent"
                " WHERE n <= %s ORDER BY at", (job_id, SAMPLES_KEPT_S, SAMPLES_USED)).fetchall()
            out: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
            for key, at, done in rows:
                out[key].append((at, int(done)))
            fresh = []
            for s in running:
                at = s.heartbeat_at or now
                last = out[s.key][-1] if out.get(s.key) else None
                if at is None:
                    continue
                if last is not None and (last[0] >= at or (s.heartbeat_at is None and last[1] == s.done)):
                    continue  # this heartbeat is stored already (or, without one, nothing moved)
                fresh.append((job_id, s.key, at, s.done, s.total, s.state))
                out[s.key].append((at, s.done))
            if fresh:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO shepherd.progress_samples (job_id, window_key, at, done, total, state)"
                                    " VALUES (%s, %s, %s, %s, %s, %s)", fresh)
        return out
