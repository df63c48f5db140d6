"""Restarts that lose nothing: `shepherd serve` on the embedded stack, SIGKILLed and started again.

A purge (requested by alice, approved by bob) finishes, a backfill is running, serve is SIGKILLed and
started again on the same data directory. Then: the demo is reused (not reloaded over the purge),
exactly one Postgres and one Temporal serve the directory, the backfill finishes in the same status
message, every thread event is posted once, a request replayed from before the restart is not run
again, verify finds no appeal rows, the per-day counts of everything no job was writing are unchanged,
and a normal stop leaves no server running.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import Counter
from typing import Any

import pytest

from bot.embedded.demo import DemoSpec
from tests.integration.serve_proc import (
    Serve,
    ch_counts,
    kill_servers,
    new_data_dir,
    pg,
    servers,
    shepherd,
    standin,
    write_config,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = DemoSpec(scale=0.001, seed=7)
BACKFILLED = ("hilton", "marriott")


def job_state(data: Any, job: str) -> str | None:
    rows = pg(data, "SELECT state FROM shepherd.jobs WHERE id = %s", job)
    return rows[0][0] if rows else None


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def test_sigkill_and_restart_of_serve_loses_nothing() -> None:
    data = new_data_dir()
    data.mkdir(parents=True)
    config = write_config(data, SPEC, monitor={"interval_s": 1},
                          backfill={"pause_between_days_s": 0.4, "heartbeat_timeout_s": 6})
    emu = standin()
    first = second = None

    def top_level_with(text: str) -> Any:
        return next((m for m in emu.messages("C_OPS") if text in m.text), None)

    try:
        first = Serve(data, emu, config, "--scale", str(SPEC.scale), "--seed", str(SPEC.seed))
        emu.app_url = first.ready()
        assert "demo loaded now" in first.output

        # A purge of oportun's appeal rows, requested by alice and approved by bob, runs to the end.
        assert (await emu.slash("U_ALICE", "C_OPS", "/purge", "oportun --types 1-3")).status == 200
        request = await emu.wait_for(lambda: top_level_with("Purge request"), timeout=60)
        purge = re.search(r"p-[0-9a-f]{6}", request.text).group(0)  # type: ignore[union-attr]
        assert (await emu.click("U_BOB", "C_OPS", request.ts, label="Approve")).status == 200
        await until(lambda: job_state(data, purge) == "done", 180, "the purge finished")
        await emu.wait_for(lambda: any("MATCH" in m.text for m in emu.thread("C_OPS", request.ts)), timeout=120)

        # A backfill that is still running when serve is killed.
        assert (await emu.slash("U_ALICE", "C_OPS", "/backfill", f"{','.join(BACKFILLED)} --window 5d"
                                " --parallel 2")).status == 200
        backfill_command = len(emu.sent) - 1
        status = await emu.wait_for(lambda: top_level_with("Backfill b-"), timeout=60)
        backfill = re.search(r"b-[0-9a-f]{6}", status.text).group(0)  # type: ignore[union-attr]
        await emu.wait_for(lambda: any("finished:" in m.text for m in emu.thread("C_OPS", status.ts)), timeout=120)
        assert job_state(data, backfill) == "running"
        purge_thread = [m.text for m in emu.thread("C_OPS", request.ts)]
        top_level = [m.ts for m in emu.messages("C_OPS")]
        edits_before = emu.message("C_OPS", status.ts).edits

        first.kill()
        # The Temporal child dies with serve (its death signal); Postgres, daemonized by pg_ctl, is left
        # running for the next start to adopt.
        await until(lambda: not servers(data)[0], 30, "the Temporal child stopped with the SIGKILLed serve")
        postgres = servers(data)[1]
        assert len(postgres) == 1
        before = ch_counts(data)
        assert all(appeal == 0 for _, appeal, _ in before["oportun"].values())

        second = Serve(data, emu, config)
        emu.app_url = second.ready()
        assert "demo reused" in second.output and "demo loaded now" not in second.output
        temporal, restarted = servers(data)
        assert len(temporal) == 1 and [p.pid for p in restarted] == [p.pid for p in postgres]

        # The backfill command replayed byte for byte (inside Slack's 5-minute window) is acked, not run.
        replayed = await emu.replay(backfill_command)
        assert replayed.status == 200, replayed

        await until(lambda: job_state(data, backfill) == "done", 240, "the backfill finished after the restart")
        await emu.wait_for(lambda: any("MATCH" in m.text for m in emu.thread("C_OPS", status.ts)), timeout=120)
        await asyncio.sleep(3)  # a few more monitor ticks: nothing more may be posted
        assert pg(data, "SELECT count(*) FROM shepherd.jobs WHERE kind IN ('backfill', 'purge')") == [(2,)]
        assert [m.ts for m in emu.messages("C_OPS")] == top_level  # no new status message, no replayed job
        assert pg(data, "SELECT ts FROM shepherd.job_messages WHERE job_id = %s AND purpose = 'status'",
                  backfill) == [(status.ts,)]
        final = emu.message("C_OPS", status.ts)
        assert "done" in final.text.lower() or "done" in str(final.blocks).lower(), final.text
        assert final.edits > edits_before  # the restarted monitor edits the message it had been editing
        thread = [m.text for m in emu.thread("C_OPS", status.ts)]
        twice = [t for t, n in Counter(thread).items() if n > 1]
        assert not twice, f"posted twice: {twice}"
        windows = pg(data, "SELECT plan FROM shepherd.jobs WHERE id = %s", backfill)[0][0]
        planned = [(c["customer"], w["start"], w["end"]) for c in windows["customers"] for w in c["windows"]]
        for customer, start, end in planned:
            said = [t for t in thread if f"{customer} {start}..{end} finished" in t]
            assert len(said) == 1, f"{customer} {start}..{end}: {len(said)} finished events"
        assert sum(f"Backfill {backfill} done" in t for t in thread) == 1
        assert sum(f"of {backfill}: MATCH" in t for t in thread) == 1, thread
        assert [m.text for m in emu.thread("C_OPS", request.ts)] == purge_thread  # nothing new under the purge

        assert second.stop() == 0
        second = None
        assert servers(data) == ([], []), "a normal stop left a server of the data directory running"

        after = ch_counts(data)
        untouched = set(before) - set(BACKFILLED)
        assert {c: before[c] for c in untouched} == {c: after[c] for c in untouched}
        for customer in BACKFILLED:
            assert all(appeal == 0 for _, appeal, _ in after[customer].values())
        verified = shepherd(data, "verify", "oportun," + ",".join(BACKFILLED), "--types", "1-3")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "MATCH" in verified.stdout
        assert servers(data) == ([], [])
    finally:
        for proc in (first, second):
            if proc is not None and proc.proc.poll() is None:
                proc.kill()
        emu.close()
        kill_servers(data)
        shutil.rmtree(data.parent, ignore_errors=True)
