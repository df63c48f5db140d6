"""SIGKILL the worker process in the middle of a purge chunk: a new worker finishes the job, no chunk
skipped, and the interrupted chunk's mutation is followed, not issued again."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import parse_config
from bot.jobs.ids import new_job_id
from bot.purge.service import PurgeJobService
from commands.chunks import plan_purge
from commands.models import CustomerRef, DateRange, PurgeDayCount
from tests.integration.test_backfill_crash import ROOT, start_worker, worker_setup

pytestmark = pytest.mark.asyncio(loop_scope="session")
RANGE = DateRange(start=date(2026, 1, 3), end=date(2026, 1, 16))
DB = "cluster_us_east_2"

COUNTS = """
import json, sys
from pathlib import Path
from bot.adapters.chdb_session import shared_session
s = shared_session(Path(sys.argv[1]) / "clickhouse")
q = lambda sql: json.loads(s.query(sql, "JSONCompact").bytes())["data"]
appeal = "SELECT scorecard_id FROM cluster_us_east_2.scorecards WHERE customer_id = 'oportun' AND scorecard_type <= 3"
print(json.dumps({
    "cards": q("SELECT toString(day), countIf(scorecard_type <= 3), countIf(scorecard_type > 3)"
               " FROM cluster_us_east_2.scorecards WHERE customer_id = 'oportun' GROUP BY day"),
    "scores": q(f"SELECT toString(day), countIf(scorecard_id IN ({appeal})), countIf(scorecard_id NOT IN ({appeal}))"
                " FROM cluster_us_east_2.scores WHERE customer_id = 'oportun' GROUP BY day"),
    "mutations": q("SELECT table, mutation_id, command, is_done FROM system.mutations"
                   " WHERE database = 'cluster_us_east_2'"),
}))
"""


def counts(data: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", COUNTS, str(data)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def per_day(rows: list[list[Any]]) -> dict[str, tuple[int, int]]:
    return {d: (int(appeal), int(other)) for d, appeal, other in rows}


async def pending_mutation(jobs: PurgeJobService, job: str, chunk: int) -> tuple[int, str] | None:
    """(chunk, mutation_id) from that chunk's running activity's heartbeat, once it has issued its delete."""
    desc = await jobs.client.get_workflow_handle(f"purge-job:{job}").describe()
    for pending in desc.raw_description.pending_activities:
        if pending.heartbeat_details.payloads:
            (beat,) = await jobs.client.data_converter.decode(pending.heartbeat_details.payloads)
            if isinstance(beat, dict) and beat.get("mutation_id") and beat.get("chunk") == chunk:
                return int(beat["chunk"]), str(beat["mutation_id"])
    return None


async def test_sigkill_mid_chunk_follows_its_mutation_and_finishes_every_chunk_once(
        temporal_env: Any, pg_server_dsn: str, tmp_path: Path) -> None:
    dsn, raw, env = worker_setup(pg_server_dsn, temporal_env, tmp_path, {"heartbeat_timeout_s": 3, "max_attempts": 10})
    config = parse_config(raw)
    before = counts(tmp_path)
    lo, hi = RANGE.start.isoformat(), RANGE.end.isoformat()
    cards, scores = per_day(before["cards"]), per_day(before["scores"])
    day_counts = [PurgeDayCount(cluster="us-east-2", customer="oportun", day=date.fromisoformat(d),
                                scorecards=cards[d][0], scores=scores[d][0]) for d in cards if lo <= d <= hi]
    plan = plan_purge(day_counts, [CustomerRef(name="oportun", cluster="us-east-2")], RANGE, (1, 2, 3), config.purge)
    chunks = plan.clusters[0].chunks
    assert chunks[0].table == "scores" and chunks[1].table == "scorecards" and len(chunks) >= 6
    pool = make_pool(dsn)
    apply_migrations(pool)
    queue = env["SHEPHERD_TEMPORAL_TASK_QUEUE"]
    jobs = PurgeJobService(temporal_env.client, pool, config, queue, heartbeat_timeout_s=3)
    log = tmp_path / "worker.log"
    # The first worker runs no mutation on scorecards: chunk 0 (scores) completes, chunk 1 hangs in flight
    # (chunk 2, the next day's scores, runs beside it; chunk 3 waits for chunk 1).
    first = subprocess.Popen([sys.executable, "-m", "tests.integration.purge_stalled_worker", f"{DB}.scorecards"],
                             cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        job = new_job_id("purge")
        await jobs.start_purge(plan, job, "U_ALICE")
        for _ in range(600):
            await asyncio.sleep(0.1)
            in_flight = await pending_mutation(jobs, job, 1)
            if in_flight is not None and in_flight[0] == 1:
                break
        else:
            raise AssertionError("no chunk ever had a mutation in flight:\n" + log.read_text()[-2000:])
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = start_worker(env, log)
        try:
            await asyncio.wait_for(jobs.purge_result(job), timeout=240)
            final = await jobs.purge_progress(job)
            attempts = [e.activity_task_started_event_attributes.attempt
                        async for e in jobs.client.get_workflow_handle(f"purge-job:{job}").fetch_history_events()
                        if e.HasField("activity_task_started_event_attributes")]
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        pool.close()
    states = final.clusters["us-east-2"]
    assert final.state == "done" and all(c.state == "done" for c in states)  # no chunk skipped
    assert max(attempts) >= 2  # the interrupted chunk finished on a retried attempt, on the second worker
    after = counts(tmp_path)
    for name, rows in (("cards", cards), ("scores", scores)):
        for d, (appeal, other) in per_day(after[name]).items():
            assert other == rows[d][1], (name, d)  # non-appeal rows untouched
            assert appeal == (0 if lo <= d <= hi else rows[d][0]), (name, d)  # appeal rows gone in range only
    tags: dict[int, list[str]] = {}
    for _table, mutation_id, command, is_done in after["mutations"]:
        found = re.search(rf"'shepherd:{job}:us-east-2:(\d+)'", command)
        if found:
            assert is_done
            tags.setdefault(int(found.group(1)), []).append(mutation_id)
    assert sorted(tags) == list(range(len(chunks)))  # one mutation per chunk, each issued once
    assert all(len(ids) == 1 for ids in tags.values()), tags
    assert tags[1] == [in_flight[1]]  # the retried attempt followed the killed worker's mutation
