"""Shepherd over Socket Mode: slack_sdk's real aiohttp client (under Bolt's handler) connects to the stand-in
through apps.connections.open; slash commands, clicks and an approved purge arrive as envelopes; Slack's
refreshes, dropped connections and redelivered envelopes lose nothing and run nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.e2e.people_env import PeopleEnv, people_stack
from tests.e2e.test_slack_backfill import job_id_in
from tests.e2e.test_slack_purge import RANGE, appeal_rows


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sock(temporal_env: Any, make_demo: Any) -> AsyncIterator[PeopleEnv]:
    async with people_stack(temporal_env, make_demo(scale=0.002), socket=True) as env:
        yield env


def ack_payload(delivery: Any) -> dict[str, Any]:
    return json.loads(delivery.body) if delivery.body else {}


async def request(env: PeopleEnv, customer: str) -> tuple[str, Any]:
    before = len(env.emu.messages("C_OPS"))
    ack = await env.say("U_ALICE", f"/purge {customer} --types 1-3 {RANGE}")
    assert ack.status == 200, ack
    msg = await env.top(before=before)
    assert "Purge request" in msg.text, msg.text
    return job_id_in(msg.text, "p"), msg


async def test_slash_commands_and_clicks_arrive_as_envelopes(sock: PeopleEnv) -> None:
    emu = sock.emu
    assert emu.app_url is None  # nothing is delivered over HTTP: there is no request URL at all
    hello = emu.socket.stats.log[0]
    assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": "A0SHEPHERD"}

    bad = await sock.say("U_ALICE", "/backfill plan hilton --window 0d")
    assert bad.status == 200 and "--window" in ack_payload(bad)["text"]  # the ack's payload is the reply
    assert emu.ephemerals("U_ALICE")[-1].text.startswith(":x:")

    before = len(emu.messages("C_OPS"))
    ack = await sock.say("U_CAROL", "/backfill plan care-oregon --window 5d --from 2026-01-03 --to 2026-01-12")
    assert ack.status == 200 and ack_payload(ack) == {}
    plan = await sock.top(before=before)
    job = job_id_in(plan.text)
    await sock.click("U_CAROL", "C_OPS", plan.ts, label="Run")
    status = await sock.top(before=before + 1)
    assert f"Backfill {job}" in status.text
    await emu.wait_for(lambda: emu.thread("C_OPS", status.ts))  # started: its controls are in the thread
    assert (await sock.deps.jobs.wait(job)).state == "done"
    kinds = [f["type"] for f in emu.socket.stats.log if "envelope_id" in f]
    assert kinds.count("slash_commands") >= 2 and kinds.count("interactive") >= 1
    assert all(f["accepts_response_payload"] == (f["type"] == "slash_commands") for f in emu.socket.stats.log
               if f.get("type") in ("slash_commands", "interactive") and "retry_attempt" not in f)


async def test_approved_purge_over_socket_mode(sock: PeopleEnv) -> None:
    emu = sock.emu
    assert appeal_rows(sock, "hilton") > 0
    job, msg = await request(sock, "hilton")
    dm = await sock.dm_with("U_BOB", job)
    assert [b[1] for b in dm.buttons()] == ["Approve", "Reject"]
    await sock.click("U_BOB", dm.channel, dm.ts, label="Approve")
    await emu.wait_for(lambda: "Approved by <@U_BOB>" in str(emu.message("C_OPS", msg.ts).blocks))
    await emu.wait_for(lambda: any(f"Purge {job} started" in m.text for m in emu.thread("C_OPS", msg.ts)))
    await asyncio.wait_for(sock.deps.jobs.purge_result(job), 120)
    assert appeal_rows(sock, "hilton") == 0
    assert sock.approvals(job) == [("U_BOB", "approve")]
    assert await sock.dm_with("U_ALICE", f"Your purge `{job}` was approved by <@U_BOB>")


async def test_refresh_and_reconnect_lose_nothing(sock: PeopleEnv) -> None:
    emu = sock.emu
    opened = emu.socket.stats.connections_opened
    assert await emu.socket_disconnect("warning") == 1  # slack_sdk reconnects on any disconnect message
    await emu.wait_for(lambda: emu.socket.stats.connections_opened > opened)
    assert (await sock.say("U_DAVE", "/shepherd help")).status == 200

    # Slack asks for a refresh while commands keep coming: each is answered, once, on some connection.
    before = len(emu.ephemerals("U_DAVE"))
    refresh = asyncio.create_task(emu.socket_disconnect("refresh_requested", grace_s=0.5))
    answers = await asyncio.gather(*(sock.say("U_DAVE", "/shepherd help") for _ in range(5)))
    await refresh
    assert [a.status for a in answers] == [200] * 5
    await emu.wait_for(lambda: len(emu.ephemerals("U_DAVE")) >= before + 5)
    assert emu.socket.stats.connections_opened >= opened + 2
    reasons = [f["reason"] for f in emu.socket.stats.log if f.get("type") == "disconnect"]
    assert reasons[-2:] == ["warning", "refresh_requested"]
    await emu.wait_connected()


async def test_dropped_connection_and_redelivered_envelopes_during_an_approval(sock: PeopleEnv) -> None:
    emu = sock.emu
    jobs_before, before = len(sock.jobs()), len(emu.messages("C_OPS"))
    # The ack of the request is lost: Slack sends the envelope again; it is answered, and requests once.
    await emu.socket_lose_acks(1)
    ack = await sock.say("U_ALICE", f"/purge spirit --types 1-3 {RANGE}")
    assert ack.status == 200 and ack.attempts == 2
    retried = [f for f in emu.socket.stats.log if f.get("retry_attempt") == 1]
    assert retried and retried[-1]["retry_reason"] == "timeout" and retried[-1]["type"] == "slash_commands"
    msg = await sock.top(before=before)
    job = job_id_in(msg.text, "p")
    await asyncio.sleep(1.0)  # long enough for a second request to show, were there one
    assert len(sock.jobs()) == jobs_before + 1 and sock.jobs()[-1] == (job, "purge", "awaiting_approval")
    assert sock.handler.deliveries.repeats >= 1

    # The connection drops (no close frame) just before bob clicks: the click waits for the reconnection.
    await emu.socket_drop(abrupt=True)
    await emu.socket_lose_acks(1)  # ... and its first ack is lost too: redelivered, answered, decided once
    click = await sock.click("U_BOB", "C_OPS", msg.ts, label="Approve")
    assert click.status == 200 and click.attempts == 2
    await emu.wait_for(lambda: any(f"Purge {job} started" in m.text for m in emu.thread("C_OPS", msg.ts)))
    await asyncio.wait_for(sock.deps.jobs.purge_result(job), 120)
    assert sock.approvals(job) == [("U_BOB", "approve")]
    started = [m for m in emu.thread("C_OPS", msg.ts) if f"Purge {job} started" in m.text]
    assert len(started) == 1
    assert appeal_rows(sock, "spirit") == 0


async def test_the_home_tab_opens_over_socket_mode(sock: PeopleEnv) -> None:
    emu = sock.emu
    before = emu.home_publishes("U_BOB")
    ack = await emu.open_home("U_BOB")  # an events_api envelope
    assert ack.status == 200 and ack.body == ""
    await emu.wait_for(lambda: emu.home_publishes("U_BOB") > before)
    assert "Waiting for your approval" in str(emu.home("U_BOB").view["blocks"])
    events = [f for f in emu.socket.stats.log if f.get("type") == "events_api"]
    assert events[-1]["payload"]["event"]["type"] == "app_home_opened"
    assert events[-1]["payload"]["event_id"].startswith("Ev")
