"""SIGKILL the worker process mid-window; a new worker resumes from the heartbeat, nothing doubles."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.service import JobService
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.jobs.ids import new_job_id
from commands.models import CustomerRef, DateRange, DayVolume
from commands.schedule import plan_backfill

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = Path(__file__).resolve().parents[2]
SPEC = DemoSpec(scale=0.004, seed=3)
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))

COUNT_SCRIPT = """
import json, sys
from pathlib import Path
from bot.adapters.chdb_session import shared_session
from bot.adapters.clickhouse import ChdbClickHouse
from bot.embedded.demo import DemoSpec, load_demo
data, dsn, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
session = shared_session(data / "clickhouse")
if mode == "load":
    load_demo(dsn, lambda db: ChdbClickHouse(session, db), DemoSpec(scale=float(sys.argv[4]), seed=int(sys.argv[5])))
else:
    ch = ChdbClickHouse(session, "cluster_chat_prod")
    rows = ch.query("SELECT toString(day), countIf(scorecard_type > 3), countIf(scorecard_type <= 3)"
                    " FROM cluster_chat_prod.scorecards WHERE customer_id = 'hilton' GROUP BY day ORDER BY day")
    scores = ch.query("SELECT toString(day), count() FROM cluster_chat_prod.scores WHERE customer_id = 'hilton'"
                      " GROUP BY day ORDER BY day")
    print(json.dumps({"cards": rows, "scores": scores}))
"""


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", COUNT_SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.temporal.worker_main"], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def worker_setup(pg_server_dsn: str, temporal_env: Any, tmp_path: Path, backfill: dict[str, Any]
                 ) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A fresh Postgres database and a worker data dir loaded with the demo; returns (dsn, raw config,
    environment for `shepherd worker` subprocesses on a fresh task queue)."""
    name = "w" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = pg_server_dsn.replace("/postgres?", f"/{name}?")
    run_script(str(tmp_path), dsn, "load", str(SPEC.scale), str(SPEC.seed))
    raw = demo_config(SPEC)
    raw["backfill"] = backfill
    (tmp_path / "shepherd.yml").write_text(yaml.safe_dump(raw))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")},
           "SHEPHERD_POSTGRES_DSN": dsn,
           "SHEPHERD_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "SHEPHERD_TEMPORAL_TASK_QUEUE": f"crash-{uuid.uuid4()}",
           "SHEPHERD_CONFIG_PATH": str(tmp_path / "shepherd.yml"),
           "SHEPHERD_DATA_DIR": str(tmp_path)}
    return dsn, raw, env


async def test_sigkill_mid_window_resumes_from_heartbeat(temporal_env: Any, pg_server_dsn: str,
                                                         tmp_path: Path) -> None:
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path,
                                 {"pause_between_days_s": 0.4, "heartbeat_timeout_s": 3, "max_attempts": 10})
    config = parse_config(raw)
    pool = make_pool(dsn)
    apply_migrations(pool)
    queue = env["SHEPHERD_TEMPORAL_TASK_QUEUE"]
    with pool.connection() as conn:
        days = conn.execute(
            "SELECT created_at::date, count(*) FROM scorecards WHERE customer_id = 'hilton' AND scorecard_type > 3"
            " AND created_at >= %s AND created_at < %s + 1 GROUP BY 1", (RANGE.start, RANGE.end)).fetchall()
    hilton = CustomerRef(name="hilton", cluster="chat-prod")
    volumes = [DayVolume(customer="hilton", day=d, conversations=n) for d, n in days]
    plan = plan_backfill(volumes, [hilton], RANGE, config.windows, config.throughput, 1, window_override=20)
    jobs = JobService(temporal_env.client, pool, config, queue)
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        job = new_job_id("backfill")
        await jobs.start_backfill(plan, job, "U_ALICE")
        killed_at = None
        for _ in range(600):
            await asyncio.sleep(0.1)
            progress = await jobs.progress(job)
            (w,) = progress.windows
            if w.state == "running" and w.done > 0 and w.last_failure is None:
                beat = await jobs.window_heartbeat(w.workflow_id or "")
                if beat.get("day", RANGE.start.isoformat()) >= "2026-01-08":
                    killed_at = beat["day"]
                    break
        assert killed_at, "the window never reported progress:\n" + log.read_text()[-2000:]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker(env, log)
        try:
            windows = await asyncio.wait_for(jobs.result(job), timeout=240)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        pool.close()
    (w,) = windows
    assert w["state"] == "done"
    assert w["resumed_from"] is not None and w["resumed_from"] >= killed_at > RANGE.start.isoformat()
    assert w["attempt"] >= 2  # the window finished on a retried attempt, on the second worker
    assert w["done"] == w["total"] == sum(n for _, n in days)  # earlier attempts' count carried over
    counts = json.loads(run_script(str(tmp_path), dsn, "count"))
    lo, hi = RANGE.start.isoformat(), RANGE.end.isoformat()
    cards = {d: (ok, appeal) for d, ok, appeal in counts["cards"] if lo <= d <= hi}
    expected = {d.isoformat(): n for d, n in days}
    assert {d: ok for d, (ok, _) in cards.items()} == expected  # nothing doubled, nothing missing
    assert all(appeal == 0 for _, appeal in cards.values())
    with psycopg.connect(dsn) as conn:
        pg_scores = dict(conn.execute(
            "SELECT s.created_at::date::text, count(*) FROM scorecards s JOIN scores x ON x.scorecard_id = s.id"
            " WHERE s.customer_id = 'hilton' AND s.scorecard_type > 3 AND s.created_at >= %s AND s.created_at < %s + 1"
            " GROUP BY 1", (RANGE.start, RANGE.end)).fetchall())
    assert {d: n for d, n in counts["scores"] if d in expected} == pg_scores


async def test_a_killed_workers_window_is_retried_by_another_within_the_heartbeat_timeout(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    """Two worker processes on one queue; SIGKILL the one running the window: the other one takes it
    over within `backfill.heartbeat_timeout_s` as configured by default (README: 30 s), not minutes."""
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path, {"pause_between_days_s": 0.5})
    config = parse_config(raw)
    timeout_s = config.backfill.heartbeat_timeout_s
    assert timeout_s == 30  # the figure the README states
    pool = make_pool(dsn)
    apply_migrations(pool)
    hilton = CustomerRef(name="hilton", cluster="chat-prod")
    with pool.connection() as conn:
        days = conn.execute(
            "SELECT created_at::date, count(*) FROM scorecards WHERE customer_id = 'hilton' AND scorecard_type > 3"
            " AND created_at >= %s AND created_at < %s + 1 GROUP BY 1", (RANGE.start, RANGE.end)).fetchall()
    volumes = [DayVolume(customer="hilton", day=d, conversations=n) for d, n in days]
    plan = plan_backfill(volumes, [hilton], RANGE, config.windows, config.throughput, 1, window_override=20)
    jobs = JobService(temporal_env.client, pool, config, env["SHEPHERD_TEMPORAL_TASK_QUEUE"])
    log = tmp_path / "workers.log"
    workers = {p.pid: p for p in (start_worker(env, log), start_worker(env, log))}

    async def running_on() -> tuple[int, int] | None:
        """(worker pid, attempt) of the window's activity once a worker has started it."""
        progress = await jobs.progress(job)
        (w,) = progress.windows
        if not w.workflow_id:
            return None
        desc = await temporal_env.client.get_workflow_handle(w.workflow_id).describe()
        for pending in desc.raw_description.pending_activities:
            identity = pending.last_worker_identity
            if pending.state == 2 and identity.partition("@")[0].isdigit():  # 2: STARTED
                return int(identity.partition("@")[0]), pending.attempt
        return None

    try:
        job = new_job_id("backfill")
        await jobs.start_backfill(plan, job, "U_ALICE")
        victim = None
        for _ in range(600):
            await asyncio.sleep(0.1)
            found = await running_on()
            beats = list((await jobs.window_heartbeats(job)).values()) if found else []
            beat = beats[0] if beats else {}
            if found and beat.get("day", RANGE.start.isoformat()) >= "2026-01-06":
                victim = found[0]
                break
        assert victim in workers, "the window never ran on one of the two workers:\n" + log.read_text()[-2000:]
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=30)
        killed = time.monotonic()
        taken_over = None
        while time.monotonic() - killed < timeout_s + 15:
            found = await running_on()
            if found and found[0] != victim:
                taken_over = time.monotonic() - killed
                assert found[1] >= 2
                break
            await asyncio.sleep(0.25)
        assert taken_over is not None, f"no other worker took the window over within {timeout_s + 15:.0f} s"
        print(f"window taken over by another worker {taken_over:.1f} s after the SIGKILL")
        # the last heartbeat reached Temporal up to one throttle interval before the kill, and a
        # retry starts 1 s after the timeout: so within the timeout plus a few seconds, never minutes
        assert taken_over <= timeout_s + 5, f"taken over after {taken_over:.1f} s (heartbeat timeout {timeout_s} s)"
        (w,) = await asyncio.wait_for(jobs.result(job), timeout=180)
        assert w["state"] == "done" and w["attempt"] >= 2 and w["done"] == sum(n for _, n in days)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        pool.close()
