"""SIGKILL the worker mid-chunk in a pipelined key-range purge: a new worker finishes the job, every
chunk once, the interrupted chunk's mutation followed (not issued again), every mutation in its
partition and key range."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import parse_config
from bot.jobs.ids import new_job_id
from bot.purge.service import PurgeJobService
from commands.models import PurgePlan
from tests.integration.test_backfill_crash import ROOT, start_worker, worker_setup
from tests.integration.test_purge_crash import DB, RANGE, counts, pending_mutation, per_day

pytestmark = pytest.mark.asyncio(loop_scope="session")

PLAN = """
import sys
from datetime import date
from pathlib import Path
from bot.adapters.chdb_session import shared_session
from bot.adapters.clickhouse import ChdbClickHouse
from bot.config import TargetTables
from bot.purge.key_ranges import KeyRangeReader
from commands.key_chunks import cuts_needed, plan_key_range_purge
from commands.models import CustomerRef, DateRange, PurgePolicy
reader = KeyRangeReader(ChdbClickHouse(shared_session(Path(sys.argv[1]) / "clickhouse"), "cluster_us_east_2"),
                        "us-east-2", TargetTables())
rng, cap = DateRange(start=date.fromisoformat(sys.argv[2]), end=date.fromisoformat(sys.argv[3])), int(sys.argv[4])
keys, partitions = reader.table_keys()
entries = reader.table_days(["oportun"], rng, [1, 2, 3], partitions)
cut_keys = reader.cut_keys(cuts_needed(entries, cap), keys, [1, 2, 3])
print(plan_key_range_purge(entries, keys, cut_keys, [CustomerRef(name="oportun", cluster="us-east-2")], rng,
                           (1, 2, 3), PurgePolicy(max_rows_per_mutation=cap)).model_dump_json())
"""


def key_range_plan(data: Path, cap: int) -> PurgePlan:
    done = subprocess.run([sys.executable, "-c", PLAN, str(data), RANGE.start.isoformat(), RANGE.end.isoformat(),
                           str(cap)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return PurgePlan.model_validate_json(done.stdout)


async def test_sigkill_mid_key_range_chunk_follows_its_mutation_and_finishes_every_chunk_once(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path, {"heartbeat_timeout_s": 3, "max_attempts": 10})
    config = parse_config(raw)
    before = counts(tmp_path)
    lo, hi = RANGE.start.isoformat(), RANGE.end.isoformat()
    cards, scores = per_day(before["cards"]), per_day(before["scores"])
    plan = key_range_plan(tmp_path, config.purge.max_rows_per_mutation)
    chunks = plan.clusters[0].chunks
    assert len(chunks) == plan.mutations_lower_bound and any(c.lo for c in chunks)
    k = next(i for i, c in enumerate(chunks) if c.table == "scorecards")
    pool = make_pool(dsn)
    apply_migrations(pool)
    queue = env["SHEPHERD_TEMPORAL_TASK_QUEUE"]
    jobs = PurgeJobService(temporal_env.client, pool, config, queue, heartbeat_timeout_s=3)
    log = tmp_path / "worker.log"
    # The first worker runs no mutation on scorecards: the scores before chunk k complete, chunk k
    # (the first scorecards) hangs in flight; the worker is killed then.
    first = subprocess.Popen([sys.executable, "-m", "tests.integration.purge_stalled_worker", f"{DB}.scorecards"],
                             cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        job = new_job_id("purge")
        await jobs.start_purge(plan, job, "U_ALICE")
        for _ in range(600):
            await asyncio.sleep(0.1)
            in_flight = await pending_mutation(jobs, job, k)
            if in_flight is not None:
                break
        else:
            raise AssertionError("chunk k never had a mutation in flight:\n" + log.read_text()[-2000:])
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker(env, log)
        try:
            await asyncio.wait_for(jobs.purge_result(job), timeout=240)
            final = await jobs.purge_progress(job)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        pool.close()
    states = final.clusters["us-east-2"]
    assert final.state == "done" and all(c.state == "done" for c in states)
    assert [s.rows_deleted for s in states] == [c.rows for c in chunks]
    after = counts(tmp_path)
    for name, rows in (("cards", cards), ("scores", scores)):
        for d, (appeal, other) in per_day(after[name]).items():
            assert other == rows[d][1], (name, d)  # non-appeal rows untouched
            assert appeal == (0 if lo <= d <= hi else rows[d][0]), (name, d)  # appeal rows gone in range only
    tags: dict[int, list[str]] = {}
    for _table, mutation_id, command, is_done in after["mutations"]:
        found = re.search(rf"'shepherd:{job}:us-east-2:(\d+)'", command)
        if found:
            assert is_done and "IN PARTITION ID '202601'" in command
            tags.setdefault(int(found.group(1)), []).append(mutation_id)
    assert sorted(tags) == list(range(len(chunks)))  # one mutation per chunk, each issued once
    assert all(len(ids) == 1 for ids in tags.values()), tags
    assert tags[k] == [in_flight[1]]  # the retried attempt followed the killed worker's mutation
