"""A serve SIGKILLed between recording a job and starting its workflow, then started again (issue 19): the
job is marked "did not start" in its thread and in `/shepherd jobs`, never left "running".

Temporal is frozen (SIGSTOP) while `/backfill` runs, so the start hangs after the job is recorded and its
status message posted; serve is then killed (its Temporal child with it) and started again."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from typing import Any

import pytest

from bot.embedded.demo import DemoSpec
from tests.integration.serve_proc import Serve, kill_servers, new_data_dir, pg, servers, standin, write_config

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = DemoSpec(scale=0.001, seed=7)


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def test_a_serve_killed_while_starting_a_job_leaves_no_running_ghost() -> None:
    data = new_data_dir()
    data.mkdir(parents=True)
    config = write_config(data, SPEC, monitor={"interval_s": 1, "start_grace_s": 5})
    emu = standin()
    first = second = None
    try:
        first = Serve(data, emu, config, "--scale", str(SPEC.scale), "--seed", str(SPEC.seed))
        emu.app_url = first.ready()
        temporal = servers(data)[0]
        assert len(temporal) == 1
        os.kill(temporal[0].pid, signal.SIGSTOP)  # every call to Temporal now waits

        assert (await emu.slash("U_ALICE", "C_OPS", "/backfill", "hilton --window 5d")).status == 200
        status = await emu.wait_for(lambda: next((m for m in emu.messages("C_OPS") if "Backfill b-" in m.text),
                                                 None), timeout=60)
        job = re.search(r"b-[0-9a-f]{6}", status.text).group(0)  # type: ignore[union-attr]
        await until(lambda: pg(data, "SELECT state FROM shepherd.jobs WHERE id = %s", job) == [("starting",)],
                    30, "the job recorded as starting")
        await asyncio.sleep(1)
        assert pg(data, "SELECT state FROM shepherd.jobs WHERE id = %s", job) == [("starting",)]

        first.kill()
        os.kill(temporal[0].pid, signal.SIGCONT)  # let the frozen child receive its death signal
        await until(lambda: not servers(data)[0], 30, "the Temporal child stopped with the SIGKILLed serve")

        second = Serve(data, emu, config)
        emu.app_url = second.ready()
        await until(lambda: pg(data, "SELECT state FROM shepherd.jobs WHERE id = %s", job) == [("did_not_start",)],
                    90, "the job marked as not started")
        said = await emu.wait_for(lambda: [m.text for m in emu.thread("C_OPS", status.ts) if "did not start" in m.text],
                                  timeout=30)
        assert f"Backfill {job} did not start" in said[0], said
        assert pg(data, "SELECT count(*) FROM shepherd.locks WHERE job_id = %s", job) == [(0,)]

        seen = len(emu.ephemerals("U_ALICE"))
        assert (await emu.slash("U_ALICE", "C_OPS", "/shepherd", "jobs")).status == 200
        listed = await emu.wait_for(lambda: (emu.ephemerals("U_ALICE")[seen:] or [None])[0], timeout=30)
        line = next(part for part in str(listed.blocks).split("\\n") if job in part)
        assert "*did not start*" in line and "running" not in line, line

        # A new backfill of the same customer is not blocked by the ghost's lock and runs.
        assert (await emu.slash("U_ALICE", "C_OPS", "/backfill", "hilton --window 51d")).status == 200
        await until(lambda: pg(data, "SELECT count(*) FROM shepherd.jobs WHERE kind = 'backfill' AND state IN"
                                     " ('running', 'done')") == [(1,)], 90, "a new backfill of hilton started")
        assert second.stop() == 0
        second = None
    finally:
        for proc in (first, second):
            if proc is not None and proc.proc.poll() is None:
                proc.kill()
        kill_servers(data)
        emu.close()
        shutil.rmtree(data.parent, ignore_errors=True)
