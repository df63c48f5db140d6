"""A fleet of real `shepherd worker` processes: a cluster on its own task queue, workers sharing it.

One worker polls the control queue (job workflows); two poll only the cluster's queue. The job's
windows run on the cluster's queue, spread over both of its workers (Temporal's record of which
worker ran each activity says so); one of them is SIGKILLed mid-job and the job still finishes,
every day's rows equal to Postgres: nothing lost, nothing written twice. Then a rolling restart:
every worker SIGTERMed in turn mid-job, the job finishing just as exactly.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from temporalio.api.enums.v1 import EventType

from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.service import JobService
from bot.config import parse_config
from bot.jobs.ids import job_workflow_id, new_job_id
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill
from tests.integration.test_backfill_crash import ROOT, worker_setup

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))
CUSTOMERS = ("hilton", "marriott")  # both on chat-prod



class ChdbServer:
    """The worker data dir's chdb behind ClickHouse's HTTP interface: every worker process reaches it
    with clickhouse-connect, as a fleet reaches a real cluster (chdb itself allows one process a path)."""

    def __init__(self, data: Path) -> None:
        port_file = data / "chdb.port"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.adapters.chdb_server", "--path", str(data / "clickhouse"), "--port", "0",
             "--port-file", str(port_file)], cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert self.proc.poll() is None, "chdb server exited at start"
            assert time.monotonic() < deadline, "chdb server did not write its port file"
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def serve_clusters(self, raw: dict[str, Any]) -> None:
        for cluster in raw["clusters"]:
            cluster["regions"] = [{**r, "engine": "clickhouse", "host": "127.0.0.1", "port": self.port, "tls": False}
                                  for r in cluster["regions"]]

    def day_counts(self) -> dict[tuple[str, str], int]:
        import clickhouse_connect

        client = clickhouse_connect.get_client(host="127.0.0.1", port=self.port, username="default", password="",
                                               compress=False)
        rows = client.query("SELECT customer_id, toString(day), countIf(scorecard_type > 3)"
                            " FROM cluster_chat_prod.scorecards WHERE customer_id IN ('hilton', 'marriott')"
                            " GROUP BY customer_id, day").result_rows
        return {(c, d): int(n) for c, d, n in rows}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli.main", "worker", *args], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


async def windows_by_worker(client: Any, workflow_ids: list[str]) -> dict[str, tuple[str, int, str]]:
    """{window workflow id: (the task queue it ran on, its completed reindex activities, the identity of
    the worker that completed it)}, read from Temporal's own record (describe and history)."""
    found = {}
    for wid in workflow_ids:
        handle = client.get_workflow_handle(wid)
        desc = await handle.describe()
        history = await handle.fetch_history()
        started = [e.activity_task_started_event_attributes.identity for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
        completed = sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in history.events)
        found[wid] = (desc.task_queue, completed, started[-1] if started else "")
    return found


@dataclass
class Fleet:
    dsn: str
    env: dict[str, str]
    control: str
    usw2: str
    chdb: ChdbServer
    pool: Any
    jobs: JobService
    days: list[tuple[str, date, int]]
    plan: Any


def make_fleet(temporal_env: Any, pg_server_dsn: str, tmp_path: Path, pause_s: float, window_days: int) -> Fleet:
    """The demo in a fresh database and chdb (served over HTTP), chat-prod on its own queue, a backfill
    plan of hilton and marriott over RANGE in `window_days` windows."""
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path,
                                 {"pause_between_days_s": pause_s, "heartbeat_timeout_s": 3, "max_attempts": 10})
    control, usw2 = env["SHEPHERD_TEMPORAL_TASK_QUEUE"], f"usw2-{uuid.uuid4().hex[:8]}"
    chdb = ChdbServer(tmp_path)
    chdb.serve_clusters(raw)
    for cluster in raw["clusters"]:
        if cluster["name"] == "chat-prod":
            cluster["task_queue"] = usw2
    (tmp_path / "shepherd.yml").write_text(yaml.safe_dump(raw))
    config = parse_config(raw)
    env["SHEPHERD_METRICS_PORT"] = "0"
    pool = make_pool(dsn)
    apply_migrations(pool)
    with pool.connection() as conn:
        days = conn.execute(
            "SELECT customer_id, created_at::date, count(*) FROM scorecards WHERE customer_id = ANY(%s)"
            " AND scorecard_type > 3 AND created_at >= %s AND created_at < %s + 1 GROUP BY 1, 2",
            (list(CUSTOMERS), RANGE.start, RANGE.end)).fetchall()
    refs = [CustomerRef(name=c, cluster="chat-prod") for c in CUSTOMERS]
    volumes = [DayVolume(customer=c, day=d, conversations=n) for c, d, n in days]
    plan = plan_backfill(volumes, refs, RANGE, config.windows, config.throughput, 4, window_override=window_days)
    return Fleet(dsn, env, control, usw2, chdb, pool, JobService(temporal_env.client, pool, config, control),
                 days, plan)


def exact_counts(f: Fleet, in_clickhouse: dict[tuple[str, str], int]) -> None:
    """Nothing lost, nothing doubled: ClickHouse holds each day's rows exactly once."""
    lo, hi = RANGE.start.isoformat(), RANGE.end.isoformat()
    assert {k: n for k, n in in_clickhouse.items() if lo <= k[1] <= hi} == {
        (c, d.isoformat()): n for c, d, n in f.days}


async def test_a_clusters_windows_run_on_its_queue_over_many_workers_and_survive_a_sigkill(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    f = make_fleet(temporal_env, pg_server_dsn, tmp_path, 1.0, 4)
    dsn, env, control, usw2, chdb, pool, jobs, plan = f.dsn, f.env, f.control, f.usw2, f.chdb, f.pool, f.jobs, f.plan
    assert len(plan.windows) == 10
    log = tmp_path / "workers.log"
    procs = [start({**env, "SHEPHERD_WORKER_QUEUES": control}, log)]
    # Each cluster worker takes at most two windows at once: four running windows need both.
    fleet = {p.pid: p for p in (start(env, log, "--queues", usw2, "--max-activities", "2") for _ in range(2))}
    procs += fleet.values()
    job = new_job_id("backfill")
    try:
        await jobs.start_backfill(plan, job, "U_ALICE")
        victim, victims_windows = None, set()
        progress = None
        for _ in range(900):  # until one cluster worker has finished a window and is running another
            await asyncio.sleep(0.1)
            assert all(p.poll() is None for p in procs), "a worker exited:\n" + log.read_text()[-3000:]
            progress = await jobs.progress(job)
            done = {int((w.worker or "0@").partition("@")[0]) for w in progress.windows if w.state == "done"}
            running: dict[int, set[str]] = {}
            for w in progress.windows:
                if w.state == "running" and w.worker:
                    running.setdefault(int(w.worker.partition("@")[0]), set()).add(w.key)
            ready = [pid for pid in running if pid in done and pid in fleet]
            if ready:
                victim, victims_windows = ready[0], running[ready[0]]
                break
        assert victim is not None, (
            f"no worker finished a window and started another: {progress}\n" + log.read_text()[-3000:])
        fleet[victim].send_signal(signal.SIGKILL)
        fleet[victim].wait(timeout=30)
        windows = await asyncio.wait_for(jobs.result(job), timeout=150)
        final = await jobs.progress(job)
        ran = await windows_by_worker(temporal_env.client, [w.workflow_id or "" for w in final.windows])
        job_queue = (await temporal_env.client.get_workflow_handle(job_workflow_id("backfill", job)).describe()
                     ).task_queue
        in_clickhouse = chdb.day_counts()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        chdb.stop()
        pool.close()
    assert job_queue == control
    assert all(w["state"] == "done" for w in windows)
    # Every window ran on the cluster's queue, completed once, by a worker of that queue; both ran some.
    assert {queue for queue, _, _ in ran.values()} == {usw2}
    assert all(completed == 1 for _, completed, _ in ran.values())
    pids = {int(identity.partition("@")[0]) for _, _, identity in ran.values()}
    assert pids == set(fleet), (pids, set(fleet))
    # Shepherd's own record agrees with Temporal's; the killed worker's windows finished on the other.
    by_key = {w.key: w for w in final.windows}
    assert {w.worker for w in final.windows} == {identity for _, _, identity in ran.values()}
    survivor = next(pid for pid in fleet if pid != victim)
    moved = {key for key in victims_windows if (by_key[key].worker or "").startswith(f"{survivor}@")}
    assert moved, ("none of the killed worker's running windows went to the other", victims_windows, final.windows)
    for key in victims_windows:  # a window may have finished between the reading and the kill landing
        if key in moved:
            assert by_key[key].attempt >= 2
        else:
            assert (by_key[key].worker or "").startswith(f"{victim}@") and by_key[key].attempt == 1
    exact_counts(f, in_clickhouse)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT state FROM shepherd.jobs WHERE id = %s", (job,)).fetchone() == ("done",)


async def test_a_rolling_restart_of_every_worker_mid_job_loses_and_repeats_nothing(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    """SIGTERM each worker in turn (two on the cluster's queue, then the control one), starting its
    replacement before the next: each stops promptly with exit 0, its windows handed back and resumed
    from their heartbeats by the others; the job finishes with every day's rows exactly once."""
    f = make_fleet(temporal_env, pg_server_dsn, tmp_path, 1.2, 10)
    assert len(f.plan.windows) == 4
    env = {**f.env, "SHEPHERD_WORKER_DRAIN_S": "30"}
    log = tmp_path / "workers.log"
    control_env = {**env, "SHEPHERD_WORKER_QUEUES": f.control}

    def cluster_worker() -> subprocess.Popen[bytes]:
        return start(env, log, "--queues", f.usw2, "--max-activities", "2")

    procs = [start(control_env, log), cluster_worker(), cluster_worker()]
    job = new_job_id("backfill")
    stops: list[tuple[int | None, float]] = []

    async def all_running() -> bool:
        p = await f.jobs.progress(job)
        return sum(w.state == "running" and w.done > 0 for w in p.windows) + sum(
            w.state == "done" for w in p.windows) == len(p.windows)

    try:
        await f.jobs.start_backfill(f.plan, job, "U_ALICE")
        for k, replacement in ((1, cluster_worker), (2, cluster_worker), (0, lambda: start(control_env, log))):
            for _ in range(600):
                if await all_running():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the windows never all ran:\n" + log.read_text()[-3000:])
            began = time.monotonic()
            procs[k].send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(procs[k].wait, 60)
            stops.append((code, time.monotonic() - began))
            procs[k] = replacement()
        windows = await asyncio.wait_for(f.jobs.result(job), timeout=150)
        final = await f.jobs.progress(job)
        ran = await windows_by_worker(temporal_env.client, [w.workflow_id or "" for w in final.windows])
        in_clickhouse = f.chdb.day_counts()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        f.chdb.stop()
        f.pool.close()
    print("worker stops (exit code, seconds):", stops)
    assert all(code == 0 and seconds < 20 for code, seconds in stops), stops  # handed back, not the whole drain
    assert all(w["state"] == "done" for w in windows)
    assert all(completed == 1 for _, completed, _ in ran.values())  # each window completed exactly once
    handed_back = [w for w in final.windows if w.attempt >= 2]
    assert handed_back and all(w.resumed_from for w in handed_back), final.windows
    exact_counts(f, in_clickhouse)
