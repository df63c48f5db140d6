"""Backfill activities: reindex one window (resumable from its heartbeat), release a job's locks.

`reindex_window` heartbeats `{done_key: n, total_key: total, "day": d, "region": r, ...}` after
every batch and, from a keepalive thread, at least every `keepalive_s` seconds (so a long delete
or a slow first batch never looks like a dead worker). A retried attempt reads its predecessor's
last heartbeat: it resumes at that day (redone whole) and keeps counting from `done_before_day`.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from bot.backfill.reindex import Progress, Reindexer
from bot.errors import UserInputError
from bot.jobs import locks
from bot.temporal.deps import ActivityDeps
from bot.temporal.drain import hand_back_if_stopping, handed_back, stopping
from bot.temporal.models import ReleaseLocksInput, WindowInput, WindowResult

KEEPALIVE_MAX_S = 2.0
FINAL_STATES = {"done", "failed", "cancelled"}


def last_heartbeat(details: Any) -> dict[str, Any]:
    """The previous attempt's last heartbeat details as a dict ({} when there were none)."""
    last = details[-1] if details else None
    return dict(last) if isinstance(last, dict) else {}


def resume_point(beat: dict[str, Any], start: date, end: date) -> tuple[date | None, int]:
    """(day to resume from, conversations done before it) from a previous attempt's heartbeat."""
    raw = beat.get("day")
    if not raw:
        return None, 0
    day = min(max(date.fromisoformat(str(raw)), start), end)
    return day, int(beat.get("done_before_day", 0)) if day > start else 0


class _Beat:
    """The latest heartbeat details, sent by the activity thread and by a keepalive thread."""

    def __init__(self, inp: WindowInput, details: dict[str, Any]) -> None:
        self.inp = inp
        self.details = details
        self.lock = threading.Lock()

    def progress(self, p: Progress) -> None:
        self.send({self.inp.progress_done_key: p.done, self.inp.progress_total_key: p.total,
                   "day": p.day.isoformat(), "done_before_day": p.done_before_day})
        hand_back_if_stopping(f"{self.inp.customer} {self.inp.start}..{self.inp.end} at {p.day}")

    def send(self, update: dict[str, Any] | None = None) -> None:
        with self.lock:
            if update:
                self.details = {**self.details, **update}
            details = self.details
        activity.heartbeat(details)

    @contextmanager
    def keepalive(self, every_s: float) -> Iterator[None]:
        stop = threading.Event()
        context = contextvars.copy_context()  # the activity's context: heartbeat() works from the thread

        def loop() -> None:
            while not stop.wait(every_s):
                try:
                    self.send()
                except Exception:  # a missed keepalive is retried at the next tick
                    activity.logger.debug("keepalive heartbeat failed", exc_info=True)

        thread = threading.Thread(target=context.run, args=(loop,), name="heartbeat-keepalive", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            with activity.shield_thread_cancel_exception():
                thread.join(timeout=15)


class BackfillActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name="reindex_window")
    def reindex_window(self, inp: WindowInput) -> WindowResult:
        try:
            return self._reindex_window(inp)
        except ApplicationError:
            raise
        except BaseException:
            if stopping():  # cancelled by the worker's shutdown after the drain time: hand it back
                raise handed_back(f"{inp.customer} {inp.start}..{inp.end}") from None
            raise

    def _reindex_window(self, inp: WindowInput) -> WindowResult:
        began = time.monotonic()
        info = activity.info()
        start, end = date.fromisoformat(inp.start), date.fromisoformat(inp.end)
        if end < start:
            raise ApplicationError(f"window {inp.start}..{inp.end} ends before it starts", non_retryable=True)
        resume_day, done_before = resume_point(last_heartbeat(info.heartbeat_details), start, end)
        try:
            found = self.deps.lookup.connect(inp.cluster)
        except UserInputError as err:  # unknown cluster, bad config: retrying cannot help
            raise ApplicationError(err.message, type=type(err).__name__, non_retryable=True) from err
        reindexer = Reindexer(self.deps.config, self.deps.source, found.client,
                              shield=activity.shield_thread_cancel_exception)
        beat = _Beat(inp, {"day": (resume_day or start).isoformat(), "region": found.region,
                           "lookup_attempts": found.attempts, "done_before_day": done_before})
        beat.send()
        with beat.keepalive(min(KEEPALIVE_MAX_S, max(inp.heartbeat_timeout_s / 4, 0.2))):
            total = reindexer.count_conversations(inp.customer, start, end)
            beat.send({inp.progress_done_key: done_before, inp.progress_total_key: total})
            result = reindexer.run(inp.customer, start, end, resume_day=resume_day, done_before=done_before,
                                   total=total, on_progress=beat.progress)
        return WindowResult(
            customer=inp.customer, start=inp.start, end=inp.end, conversations=result.done,
            scorecards=result.scorecards, scores=result.scores, region=found.region,
            lookup_attempts=found.attempts, resumed_from=resume_day.isoformat() if resume_day else None,
            seconds=round(time.monotonic() - began, 3), attempt=info.attempt, worker=self.deps.worker_identity,
        )

    @activity.defn(name="release_locks")
    def release_locks(self, inp: ReleaseLocksInput) -> int:
        """Release every lock of the job; with `state`, record how the job ended in shepherd.jobs."""
        released = locks.release(self.deps.state, inp.job_id)
        if inp.state:
            finished = inp.state in FINAL_STATES
            with self.deps.state.connection() as conn:
                conn.execute(
                    "UPDATE shepherd.jobs SET state = %s, error = %s,"
                    " finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE id = %s",
                    (inp.state, inp.error, finished, inp.job_id),
                )
        return released
