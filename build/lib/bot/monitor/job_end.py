"""What the monitor does once a job has ended: keep its final progress for the write-ups and, with
`verify.after_jobs`, verify what a finished backfill or purge touched and post the verdict under its
summary.

Everything is derived from Postgres, so a restarted monitor neither repeats nor misses a step. When
the monitor first sees a job final it stores the progress (`shepherd.job_results`) and, before the
job's `end:{run}` event is recorded, marks `verify-due:{run}` in `shepherd.events_posted`. A
verification is due while that mark and `end:{run}` exist and `verify:{run}` does not. It runs in a
background thread (never holding up a tick), under a Postgres advisory lock (one runner per job and
run, released if the process dies), is recorded as the `verify` job `verify_id(job, run)` linked by
`params.job`, then the verdict is queued in the job's thread (`event:{job}:verify:{run}`), the
summary edited to carry it, and `verify:{run}` recorded. A run cut short by a crash is counted
(`verify-try:{run}:{n}`) and redone by the next monitor, at most MAX_TRIES times; a verification
that fails posts why, once, and is not retried.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg.errors import UniqueViolation

from bot.errors import ShepherdError
from bot.jobs.event_log import EventLog
from bot.slack.messages import Message, context, fields, header, section
from bot.slack.outbox import Outbox
from bot.verify.service import VerifyService
from bot.writeups.service import WriteupService
from commands.verify_report import types_text

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TRIES = 3
NAMED = 40  # mismatching customers named in the verdict
AUTO_REQUESTER = "shepherd"


@dataclass(frozen=True)
class Due:
    job: str
    kind: str
    plan: dict[str, Any]
    run: str
    job_channel: str | None
    channel: str  # the job's status message, whose thread gets the verdict
    ts: str


def verify_id(job_id: str, run: str) -> str:
    """The automatic verification's job id: fixed by the job and run, so two runners record it once."""
    return "v-" + hashlib.sha1(f"{job_id}:{run}".encode()).hexdigest()[:6]


class JobEnd:
    def __init__(self, pool: Any, outbox: Outbox, writeups: WriteupService, verify: VerifyService | None,
                 *, after_jobs: bool, max_tries: int = MAX_TRIES) -> None:
        self.pool, self.outbox, self.writeups, self.verify = pool, outbox, writeups, verify
        self.after_jobs = after_jobs and verify is not None
        self.max_tries = max_tries
        self.events = EventLog(pool)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._gate = asyncio.Semaphore(1)  # verifications are heavy on both databases: one at a time
        self._stopped = False

    # ---- called by the monitor ---------------------------------------------------------------

    def ended(self, job_id: str, state: str, run: str, progress: Any) -> None:
        """Blocking. The monitor sees the job final and has not yet recorded its `end:{run}` event."""
        self.writeups.store_result(job_id, progress)
        if self.after_jobs and state == "done":
            self.events.mark(job_id, f"verify-due:{run}")

    async def start_due(self) -> int:
        """Start each due verification not already running here, in the background; how many started."""
        if not self.after_jobs or self._stopped:
            return 0
        started = 0
        for due in await asyncio.to_thread(self._due):
            key = f"{due.job}:{due.run}"
            if key in self._running:
                continue
            task = asyncio.create_task(self._run(due), name=f"verify-after:{key}")
            self._running[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
            started += 1
        return started

    async def idle(self) -> None:
        """Wait for the verifications running now."""
        while self._running:
            await asyncio.wait(list(self._running.values()))

    def stop(self) -> None:
        """Drop what runs: its result is not written, and the next monitor runs it again."""
        self._stopped = True
        for task in self._running.values():
            task.cancel()

    # ---- one verification ------------------------------------------------------------------------

    async def _run(self, due: Due) -> None:
        async with self._gate:
            await _in_daemon_thread(self._verify_locked, due)

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("verification after %s stopped: %r (the next tick tries again)", key, err)

    def _verify_locked(self, due: Due) -> None:
        lock = f"shepherd-verify:{due.job}:{due.run}"
        with self.pool.connection() as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (lock,)).fetchone()
            conn.commit()  # the lock is the session's: no transaction stays open while it runs
            if not (row and row[0]):
                return  # another monitor is verifying it
            try:
                self._verify(due)
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock,))

    def _verify(self, due: Due) -> None:
        if self.events.seen(due.job, f"verify:{due.run}"):
            return
        vid = verify_id(due.job, due.run)
        doc = self._stored(vid)
        if doc is None:
            tries = self.events.count(due.job, f"verify-try:{due.run}:")
            if tries >= self.max_tries:
                why = f"{tries} earlier attempt(s) never finished (the process stopped)"
                self._post(due, failed_message(due.job, why))
                return
            self.events.mark(due.job, f"verify-try:{due.run}:{tries + 1}")
            assert self.verify is not None
            try:
                report = self.verify.verify_job(due.kind, due.plan)
            except ShepherdError as err:
                self._post(due, failed_message(due.job, err.message))
                return
            except Exception as err:
                log.warning("verification after %s failed", due.job, exc_info=True)
                self._post(due, failed_message(due.job, f"{type(err).__name__} from Postgres or ClickHouse "
                                                        "(the details are in Shepherd's log)"))
                return
            if self._stopped:
                return
            with suppress(UniqueViolation):  # recorded by another runner meanwhile
                self.verify.record(self.pool, vid, report, AUTO_REQUESTER, due.job_channel, linked_job=due.job)
            doc = self._stored(vid)
            assert doc is not None
        self._post(due, verdict_message(due.job, vid, doc), self._summary_with(due, vid, doc))

    # ---- writing ------------------------------------------------------------------------------

    def _post(self, due: Due, msg: Message, summary: dict[str, Any] | None = None) -> None:
        self.outbox.enqueue(f"event:{due.job}:verify:{due.run}", "chat.postMessage", msg.as_kwargs(),
                            channel=due.channel, thread_ts=due.ts)
        if summary is not None:
            self.outbox.enqueue(f"event:{due.job}:verify-summary:{due.run}", "chat.update", summary, channel=None)
        self.events.mark(due.job, f"verify:{due.run}")

    def _summary_with(self, due: Due, vid: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The job's summary with a Verification line above its buttons (an edit, queued after the summary)."""
        end_key = f"event:{due.job}:end:{due.run}"
        with self.pool.connection() as conn:
            row = conn.execute("SELECT payload FROM shepherd.outbox WHERE dedupe_key = %s", (end_key,)).fetchone()
        if row is None:
            return None
        payload = _json(row[0])
        blocks = list(payload.get("blocks") or [])
        if len(blocks) >= 50:
            return None  # Slack's limit: the verdict stays in its own reply
        at = next((i for i, b in enumerate(blocks) if b.get("type") == "actions"), len(blocks))
        line = f"{_icon(doc)} *Verification {vid}:* {doc.get('verdict', '')}"
        blocks.insert(at, section(line).to_dict())
        word = "MATCH" if doc.get("ok") else "MISMATCH"
        return {"ts_key": end_key, "text": f"{payload.get('text', '')} · verification {word}", "blocks": blocks}

    # ---- Postgres -----------------------------------------------------------------------------

    def _due(self) -> list[Due]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT j.id, j.kind, j.plan, split_part(d.event_key, ':', 2), j.channel, m.channel, m.ts"
                " FROM shepherd.events_posted d JOIN shepherd.jobs j ON j.id = d.job_id"
                " JOIN shepherd.job_messages m ON m.job_id = j.id AND m.purpose = 'status'"
                " WHERE d.event_key LIKE 'verify-due:%%'"
                " AND EXISTS (SELECT 1 FROM shepherd.events_posted e WHERE e.job_id = j.id"
                "   AND e.event_key = 'end:' || split_part(d.event_key, ':', 2))"
                " AND NOT EXISTS (SELECT 1 FROM shepherd.events_posted e WHERE e.job_id = j.id"
                "   AND e.event_key = 'verify:' || split_part(d.event_key, ':', 2))"
                " ORDER BY d.posted_at").fetchall()
        return [Due(r[0], r[1], _json(r[2]) or {}, r[3], r[4], r[5], r[6]) for r in rows]

    def _stored(self, vid: str) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT plan FROM shepherd.jobs WHERE id = %s AND kind = 'verify'", (vid,)).fetchone()
        return _json(row[0]) if row else None


# ---- messages -----------------------------------------------------------------------------------


def _icon(doc: dict[str, Any]) -> str:
    return ":white_check_mark:" if doc.get("ok") else ":x:"


def verdict_message(job_id: str, vid: str, doc: dict[str, Any]) -> Message:
    """The verdict posted under a finished job's summary, from the stored report (`report_json`)."""
    totals = doc.get("totals") or {}
    blocks: list[Any] = [
        header(f"Verification {vid} of {job_id}: {'MATCH' if doc.get('ok') else 'MISMATCH'}"),
        fields([("Checked", f"{doc.get('checked', 0)} customers"), ("Matching", str(doc.get("matching", 0))),
                ("Mismatching", str(doc.get("mismatching", 0))), ("Range", f"{doc.get('from')} to {doc.get('to')}"),
                ("Appeal types", types_text(doc.get("types") or ())),
                ("Appeal rows in ClickHouse", f"{totals.get('appeal_scorecards', 0):,} scorecards, "
                                              f"{totals.get('appeal_scores', 0):,} scores")]),
    ]
    if named := list(doc.get("mismatching_customers") or ()):
        more = f" and {len(named) - NAMED} more" if len(named) > NAMED else ""
        blocks.append(section("*Mismatching:* " + ", ".join(named[:NAMED]) + more))
    blocks.append(section(f"{_icon(doc)} {doc.get('verdict', '')}"))
    blocks.append(context(f"run by Shepherd when {job_id} finished (verify.after_jobs) · `/verify <customers> "
                          f"--job {job_id}` checks again · `shepherd verify ... --json` lists every difference"))
    return Message(f"{_icon(doc)} Verification {vid} of {job_id}: {doc.get('verdict', '')}", blocks)


def failed_message(job_id: str, reason: str) -> Message:
    text = (f":warning: The verification of {job_id} could not run: {reason}. It is not retried by itself; "
            f"`/verify <customers> --job {job_id}` runs it by hand.")
    return Message(text, [section(text)])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a daemon thread. Unlike asyncio.to_thread (whose threads are joined at exit), a
    verification minutes long never holds up the process's exit; the next monitor redoes it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as err:  # handed to the awaiting task, whatever it is
            result, error = None, err
        with suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="shepherd-verify", daemon=True).start()
    return await done
