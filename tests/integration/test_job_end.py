"""What the monitor does when a job ends, on the monitor's rig (real Temporal dev server, embedded
Postgres, chdb demo data, the Slack stand-in): its progress kept for the write-ups and, with
verify.after_jobs, one verification linked to the job whose verdict joins the summary, once,
across restarts and failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest_asyncio

from bot.monitor.job_end import JobEnd, verify_id
from bot.registry import CustomerRegistry
from bot.verify.service import VerifyService
from bot.writeups.service import WriteupService
from commands.verify_report import VerifyReport
from tests.integration import paced_window
from tests.integration.test_monitor import Rig, drive, monitor_rig


class ProcessDied(BaseException):
    """Stands for the process dying mid-verification: nothing after it runs, nothing is posted."""


class DiesMidway(VerifyService):
    def verify_job(self, kind: str, plan: dict[str, Any]) -> VerifyReport:
        raise ProcessDied()


class ClickHouseDown(VerifyService):
    calls = 0

    def verify_job(self, kind: str, plan: dict[str, Any]) -> VerifyReport:
        ClickHouseDown.calls += 1
        raise psycopg.OperationalError("connection refused")


@pytest_asyncio.fixture(loop_scope="session")
async def rig(temporal_env: Any, make_demo: Any) -> AsyncIterator[Rig]:
    async with monitor_rig(temporal_env, make_demo) as made:
        yield made


def job_end(rig: Rig, *, after_jobs: bool = True, verify: type[VerifyService] = VerifyService) -> JobEnd:
    service = verify(rig.config, CustomerRegistry.from_config(rig.config), rig.pool, rig.lookup)
    return JobEnd(rig.pool, rig.outbox, WriteupService(rig.pool, rig.config), service, after_jobs=after_jobs)


async def start(rig: Rig) -> tuple[str, str]:
    paced_window.RATES["hilton"] = 100.0  # 4 windows of 250 conversations at once: about 2.5 s
    return await rig.start({"hilton": 50})


def summarised(rig: Rig, job: str, ts: str) -> Any:
    async def check() -> bool:
        return any(t.startswith(f":white_check_mark: Backfill {job} done") for t in rig.thread(ts))
    return check


def verified(rig: Rig, job: str, ts: str) -> Any:
    async def check() -> bool:
        return bool(verdicts(rig, job, ts))
    return check


async def deliver(rig: Rig) -> None:
    poster = rig.poster()
    while rig.outbox.pending_count():  # the poster paces the channel: some rows wait a little
        await poster.run_once()
        await asyncio.sleep(0.02)


async def settle(rig: Rig, monitor: Any, ticks: int = 3) -> None:
    """More ticks, each waiting for what it started: whatever they would post twice shows up."""
    for _ in range(ticks):
        await monitor.tick()
        await monitor.job_end.idle()
        await deliver(rig)


def linked(rig: Rig, job: str) -> list[tuple[str, str, str]]:
    with rig.pool.connection() as conn:
        return conn.execute("SELECT id, requester, state FROM shepherd.jobs WHERE kind = 'verify'"
                            " AND params->>'job' = %s", (job,)).fetchall()


def events(rig: Rig, job: str, prefix: str) -> list[str]:
    with rig.pool.connection() as conn:
        return [r[0] for r in conn.execute("SELECT event_key FROM shepherd.events_posted WHERE job_id = %s"
                                           " AND starts_with(event_key, %s) ORDER BY 1", (job, prefix))]


def kept(rig: Rig, job: str) -> dict[str, Any] | None:
    with rig.pool.connection() as conn:
        row = conn.execute("SELECT progress FROM shepherd.job_results WHERE job_id = %s", (job,)).fetchone()
    return row[0] if row else None


def verdicts(rig: Rig, job: str, ts: str) -> list[str]:
    """The verdict replies (or the could-not-run notes) about the job in its thread."""
    return [t for t in rig.thread(ts) if "verification" in t.lower() and f"of {job}" in t]


async def test_a_finished_job_gets_one_verdict_in_its_thread_and_its_write_up(rig: Rig) -> None:
    job, ts = await start(rig)
    monitor, poster = rig.monitor(job_end(rig)), rig.poster()
    await drive(monitor, poster, verified(rig, job, ts))
    await settle(rig, monitor)

    vid = verify_id(job, "1")
    assert [(r[0], r[1]) for r in linked(rig, job)] == [(vid, "shepherd")]
    [reply] = verdicts(rig, job, ts)
    with rig.pool.connection() as conn:
        verdict = conn.execute("SELECT plan->>'verdict' FROM shepherd.jobs WHERE id = %s", (vid,)).fetchone()[0]
    assert reply.endswith(f"Verification {vid} of {job}: {verdict}")
    thread = rig.emu.thread("C_OPS", ts)
    assert Counter(m.text for m in thread).most_common(1)[0][1] == 1
    # The summary itself carries the verdict (edited in place), and the verdict follows it in the thread.
    [summary] = [m for m in thread if m.text.startswith(f":white_check_mark: Backfill {job} done")]
    assert "· verification MATCH" in summary.text or "· verification MISMATCH" in summary.text
    assert f"Verification {vid}:* {verdict}" in str(summary.blocks)
    assert thread.index(summary) < next(i for i, m in enumerate(thread) if m.text == reply)
    assert kept(rig, job)["state"] == "done"  # type: ignore[index]

    draft = WriteupService(rig.pool, rig.config).draft("CONVI-6259", "C_OPS", "U_ALICE", job_ids=(job,))
    section = draft.markdown.split("### Verification", 1)[1]
    assert f"- {vid} (" in section and verdict in section
    assert "Not verified yet" not in draft.markdown


async def test_a_restarted_monitor_runs_the_verification_it_missed_once(rig: Rig) -> None:
    job, ts = await start(rig)
    first = rig.monitor(job_end(rig, verify=DiesMidway))
    for _ in range(120):  # tick until the tick that sees the job end starts its verification
        if (await first.tick()).verifications:
            break
        await deliver(rig)
        await asyncio.sleep(0.5)
    await first.job_end.idle()  # the process dies in the middle of that verification: no more ticks
    await deliver(rig)
    assert await summarised(rig, job, ts)()
    assert verdicts(rig, job, ts) == [] and linked(rig, job) == []
    assert events(rig, job, "verify") == ["verify-due:1", "verify-try:1:1"]
    before = [m.ts for m in rig.emu.thread("C_OPS", ts)]

    second = rig.monitor(job_end(rig))  # a new process: nothing in memory
    await drive(second, rig.poster(), verified(rig, job, ts))
    await settle(rig, second)
    third = rig.monitor(job_end(rig))  # and another restart afterwards changes nothing
    await settle(rig, third)

    thread = rig.emu.thread("C_OPS", ts)
    assert Counter(m.text for m in thread).most_common(1)[0][1] == 1  # nothing posted twice
    assert [m.ts for m in thread][:len(before)] == before and len(thread) == len(before) + 1
    assert len(verdicts(rig, job, ts)) == 1
    assert [r[0] for r in linked(rig, job)] == [verify_id(job, "1")]
    assert events(rig, job, "verify") == ["verify-due:1", "verify-try:1:1", "verify-try:1:2", "verify:1"]


async def test_a_verification_that_cannot_run_says_so_once(rig: Rig) -> None:
    ClickHouseDown.calls = 0
    job, ts = await start(rig)
    monitor = rig.monitor(job_end(rig, verify=ClickHouseDown))
    await drive(monitor, rig.poster(), verified(rig, job, ts))
    await settle(rig, monitor)
    await settle(rig, rig.monitor(job_end(rig, verify=ClickHouseDown)))

    [said] = verdicts(rig, job, ts)
    assert said.startswith(f":warning: The verification of {job} could not run: OperationalError")
    assert "Traceback" not in said and "connection refused" not in said
    assert ClickHouseDown.calls == 1 and linked(rig, job) == []


async def test_with_the_option_off_nothing_is_verified(rig: Rig) -> None:
    job, ts = await start(rig)
    monitor, poster = rig.monitor(job_end(rig, after_jobs=False)), rig.poster()
    await drive(monitor, poster, summarised(rig, job, ts))
    await settle(rig, monitor)

    assert verdicts(rig, job, ts) == [] and linked(rig, job) == [] and events(rig, job, "verify") == []
    assert kept(rig, job)["state"] == "done"  # type: ignore[index]  # the progress is kept all the same
