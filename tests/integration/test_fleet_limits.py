"""Per-cluster limits hold across a fleet of real `shepherd worker` processes, not per process.

Two purge jobs on one cluster (hilton and marriott, both on chat-prod), each pipelining two chunks,
run on two worker processes whose deletes land a moment after they are decided (a slow link). The
cluster's scores table runs no merges, so no mutation on it finishes: with `max_unfinished_mutations:
1` a chunk may issue only while at most one is unfinished, so exactly two may ever be unfinished,
however many workers read the queue at once. Then merges start and both jobs finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
import yaml

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import parse_config
from bot.jobs.ids import new_job_id
from bot.planning import PlanningService, PurgeRequest
from bot.purge.service import PurgeJobService
from bot.registry import CustomerRegistry
from commands.models import DateRange
from tests.integration.test_backfill_crash import ROOT, worker_setup
from tests.integration.test_worker_fleet import ChdbServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 22))
CAP = 1


def slow_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.integration.slow_issue_worker"], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


async def test_the_unfinished_mutations_cap_holds_across_worker_processes(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path, {"heartbeat_timeout_s": 5, "max_attempts": 5})
    chdb = ChdbServer(tmp_path)
    chdb.serve_clusters(raw)
    raw["purge"] = {**raw.get("purge", {}), "max_unfinished_mutations": CAP}
    (tmp_path / "shepherd.yml").write_text(yaml.safe_dump(raw))
    config = parse_config(raw)
    env["SHEPHERD_METRICS_PORT"] = "0"
    pool = make_pool(dsn)
    apply_migrations(pool)
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: None), config.lookup)
    planning = PlanningService(config, CustomerRegistry.from_config(config), pool, lookup)
    plans = {c: planning.plan_purge(PurgeRequest((c,), RANGE), today=date(2026, 3, 1)).plan
             for c in ("hilton", "marriott")}
    for plan in plans.values():  # each job's first two chunks delete scores: four issuers at once
        assert [c.table for c in plan.clusters[0].chunks[:2]] == ["scores", "scores"], plan.clusters[0].chunks[:3]
    ch = clickhouse_connect.get_client(host="127.0.0.1", port=chdb.port, username="default", password="",
                                       compress=False)
    database = next(c for c in config.clusters if c.name == "chat-prod").regions[0].database
    jobs = PurgeJobService(temporal_env.client, pool, config, env["SHEPHERD_TEMPORAL_TASK_QUEUE"])
    log = tmp_path / "workers.log"

    def unfinished() -> int:
        return int(ch.query("SELECT count() FROM system.mutations WHERE database = {d:String}"
                            " AND table = 'scores' AND NOT is_done", parameters={"d": database}).result_rows[0][0])

    ch.command(f"SYSTEM STOP MERGES `{database}`.scores")
    procs = [slow_worker(env, log) for _ in range(2)]
    ids = [new_job_id("purge") for _ in plans]
    seen: list[int] = []
    try:
        await asyncio.sleep(3)  # both workers polling: the jobs' first chunks go to both at once
        for job, plan in zip(ids, plans.values(), strict=True):
            await jobs.start_purge(plan, job, "U_ALICE")
        deadline, full_at = time.monotonic() + 90, None
        # Until the cap is reached, then long enough for every issuer to read the queue and wait its delay.
        while time.monotonic() < deadline and (full_at is None or time.monotonic() - full_at < 6):
            assert all(p.poll() is None for p in procs), "a worker exited:\n" + log.read_text()[-3000:]
            seen.append(unfinished())
            if full_at is None and seen[-1] > CAP:
                full_at = time.monotonic()
            await asyncio.sleep(0.05)
        waiting = [c for job in ids for c in (await jobs.purge_progress(job)).clusters["chat-prod"]
                   if c.state == "running"]
        ch.command(f"SYSTEM START MERGES `{database}`.scores")
        for job in ids:
            await asyncio.wait_for(jobs.purge_result(job), timeout=180)
        outcomes = [await jobs.purge_progress(job) for job in ids]
        left = ch.query("SELECT count() FROM {d:Identifier}.scorecards WHERE customer_id IN ('hilton', 'marriott')"
                        " AND scorecard_type <= 3 AND day BETWEEN {lo:Date} AND {hi:Date}",
                        parameters={"d": database, "lo": RANGE.start, "hi": RANGE.end}).result_rows[0][0]
    finally:
        ch.command(f"SYSTEM START MERGES `{database}`.scores")
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        chdb.stop()
        pool.close()
    print("unfinished scores mutations seen:", sorted(set(seen)), "chunks running:", len(waiting))
    assert max(seen) == CAP + 1, seen  # the cap reached, never passed
    assert len(waiting) == 4  # two issued, two waiting for the queue
    assert all(o.state == "done" for o in outcomes)
    assert left == 0
