"""`shepherd serve` when Slack's Web API is down, and when a signed request is delivered twice.

Real processes: serve on the embedded stack, the Slack stand-in in the test process. Bolt's own
token check (auth.test before the first listener) made every ack depend on the Web API: now the
token is checked once at start and the ack never calls Slack.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bot.embedded.demo import DemoSpec
from tests.integration.serve_proc import Serve, kill_servers, new_data_dir, pg, servers, standin

pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = DemoSpec(scale=0.0005, seed=7)


async def test_a_token_slack_refuses_stops_serve_at_start_with_a_clear_error() -> None:
    data = new_data_dir()
    emu = standin()
    try:
        serve = Serve(data, emu, None, "--scale", str(SPEC.scale), token="xoxb-not-the-apps-token")
        assert serve.exited() == 2, serve.output
        assert "SHEPHERD_SLACK_BOT_TOKEN was refused by Slack's auth.test (invalid_auth)" in serve.output
        assert "Traceback" not in serve.output and "xoxb-not-the-apps-token" not in serve.output
        assert not (data / "postgres").exists()  # checked before anything started
    finally:
        emu.close()
        shutil.rmtree(data.parent, ignore_errors=True)


class Running:
    def __init__(self, emu: Any, serve: Serve, data: Any) -> None:
        self.emu, self.serve, self.data = emu, serve, data


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[Running]:
    data = new_data_dir()
    emu = standin()
    emu.outage(503)  # Slack is down from the start: serve must start and ack all the same
    serve = Serve(data, emu, None, "--scale", str(SPEC.scale), "--seed", str(SPEC.seed))
    try:
        emu.app_url = serve.ready()
        yield Running(emu, serve, data)
        assert serve.stop() == 0
        assert servers(data) == ([], [])
    finally:
        if serve.proc.poll() is None:
            serve.kill()
        emu.close()
        kill_servers(data)
        shutil.rmtree(data.parent, ignore_errors=True)


async def test_with_slack_down_commands_are_acked_and_replies_arrive_once_it_is_back(running: Running) -> None:
    emu, data = running.emu, running.data
    assert "did not answer the token check; starting anyway" in running.serve.output
    helped = await emu.slash("U_ALICE", "C_OPS", "/shepherd", "help")
    planned = await emu.slash("U_ALICE", "C_OPS", "/backfill", "plan care-oregon --window 10d")
    for ack in (helped, planned):
        assert ack.status == 200 and ack.elapsed_s < 3, ack
    await asyncio.sleep(6)  # the client's own retries are over: the replies are in the outbox now
    assert emu.messages("C_OPS") == [] and emu.ephemerals("U_ALICE") == []
    assert all(not c.ok for c in emu.calls)  # Slack answered nothing
    queued = pg(data, "SELECT method FROM shepherd.outbox WHERE state = 'pending' ORDER BY id")
    assert ("chat.postEphemeral",) in queued and ("chat.postMessage",) in queued

    emu.end_outage()
    plan = await emu.wait_for(lambda: next((m for m in emu.messages("C_OPS") if "care-oregon" in str(m.blocks)),
                                           None), timeout=120)
    help_reply = await emu.wait_for(lambda: emu.ephemerals("U_ALICE"), timeout=120)
    assert help_reply[0].text == "Shepherd commands" and "/backfill" in str(help_reply[0].blocks)
    assert [b[1] for b in plan.buttons()][:2] == ["Run", "Dismiss"]
    # the flow went on once the post had its ts: the plan message is recorded against its job
    await emu.wait_for(lambda: pg(data, "SELECT count(*) FROM shepherd.job_messages WHERE purpose = 'plan'"
                                        " AND ts = %s", plan.ts) == [(1,)], timeout=10)


async def test_a_replayed_signed_request_runs_once(running: Running) -> None:
    emu, data = running.emu, running.data
    before = len(emu.messages("C_OPS"))
    first = await emu.slash("U_ALICE", "C_OPS", "/backfill", "plan spirit --window 5d")
    assert first.status == 200
    await emu.wait_for(lambda: len(emu.messages("C_OPS")) > before, timeout=60)
    again = await asyncio.gather(emu.replay(), emu.replay())  # twice more, at once
    assert [d.status for d in again] == [200, 200] and all(d.body == "" for d in again)
    await asyncio.sleep(3)
    plans = [m for m in emu.messages("C_OPS")[before:] if "spirit" in str(m.blocks)]
    assert len(plans) == 1
    assert pg(data, "SELECT count(*) FROM shepherd.jobs WHERE plan::text LIKE '%%spirit%%'") == [(1,)]
    ((job,),) = pg(data, "SELECT id FROM shepherd.jobs WHERE plan::text LIKE '%%spirit%%'")
    audited = "SELECT count(*) FROM shepherd.audit_log WHERE action = '/backfill_plan' AND target = %s"
    await emu.wait_for(lambda: pg(data, audited, job)[0][0] > 0, timeout=60)
    await asyncio.sleep(2)
    assert pg(data, audited, job) == [(1,)]  # the command ran (and was audited) once
    assert "delivered again" in running.serve.output  # logged, with the timestamp, never the signature
