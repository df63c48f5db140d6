"""Approvals that reach the approvers, and what each person is told and shown (over HTTP, the other transport):
direct messages to every eligible approver (a user group expanded), every copy updated on a decision, the
stale copy's answer, a direct message that cannot be sent, the requester's notifications, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio

from tests.e2e.people_env import PeopleEnv, people_stack, settle
from tests.e2e.test_slack_backfill import job_id_in
from tests.e2e.test_slack_purge import RANGE


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def people(temporal_env: Any, make_demo: Any) -> AsyncIterator[PeopleEnv]:
    async with people_stack(temporal_env, make_demo(scale=0.002), socket=False) as env:
        yield env


async def request(env: PeopleEnv, customer: str, user: str = "U_ALICE") -> tuple[str, Any]:
    before = len(env.emu.messages("C_OPS"))
    await env.say(user, f"/purge {customer} --types 1-3 {RANGE}")
    msg = await env.top(before=before)
    assert "Purge request" in msg.text, msg.text
    return job_id_in(msg.text, "p"), msg


def plan_hash(msg: Any) -> str:
    return str(msg.buttons()[0][3]).partition(":")[2]


async def test_each_approver_gets_the_request_and_a_decision_updates_every_copy(people: PeopleEnv) -> None:
    emu = people.emu
    job, msg = await request(people, "marriott")
    # bob (listed), erin and frank (@dba): not alice, who asked, and not carol or dave, who may not approve.
    copies = {u: await people.dm_with(u, job) for u in ("U_BOB", "U_ERIN", "U_FRANK")}
    assert not any(job in m.text for u in ("U_ALICE", "U_CAROL", "U_DAVE") for m in emu.dm(u))
    for copy in copies.values():
        assert [b[1] for b in copy.buttons()] == ["Approve", "Reject"]
        assert f"plan `{plan_hash(msg)}`" in str(copy.blocks) and "Sent to you as an approver" in str(copy.blocks)
        assert float(copy.ts) > float(msg.ts)  # the channel copy came first
    assert any(c.method == "usergroups.users.list" for c in emu.calls)

    stale = copies["U_ERIN"]
    await people.click("U_FRANK", copies["U_FRANK"].channel, copies["U_FRANK"].ts, label="Reject")
    rejected = "Rejected by <@U_FRANK>"
    await emu.wait_for(lambda: all(rejected in str(emu.message(c.channel, c.ts).blocks) for c in copies.values()))
    for where in [msg, *copies.values()]:
        shown = emu.message(where.channel, where.ts)
        assert rejected in str(shown.blocks) and not shown.buttons(), where.channel
    assert people.jobs()[-1] == (job, "purge", "rejected")

    # erin's screen still shows the old copy: her click is answered "already decided" and changes nothing.
    seen = len(people.replies("U_ERIN"))
    await people.click("U_ERIN", stale.channel, stale.ts, label="Approve", as_shown=stale)
    assert "already decided" in await people.reply_to("U_ERIN", seen)
    assert people.approvals(job) == [("U_FRANK", "reject")] and people.jobs()[-1] == (job, "purge", "rejected")

    told = await people.dm_with("U_ALICE", f"`{job}` was rejected by <@U_FRANK>")
    assert "Open its thread" in told.text and "/archives/C_OPS/p" in told.text


async def test_a_direct_message_that_cannot_be_sent_is_noted_and_the_request_stands(people: PeopleEnv) -> None:
    emu = people.emu
    emu.deactivate("U_FRANK")
    emu.restrict_dms("U_ERIN")
    try:
        job, msg = await request(people, "united-east")
        note = await emu.wait_for(lambda: next((m for m in emu.thread("C_OPS", msg.ts)
                                                if "Could not send" in m.text), None))
        assert "<@U_ERIN> (restricted_action)" in note.text and "<@U_FRANK> (user_disabled)" in note.text
        assert await people.dm_with("U_BOB", job)  # the others still got theirs
        assert people.jobs()[-1] == (job, "purge", "awaiting_approval") and msg.buttons()
        # The request stands in the channel: bob decides there, and his copy follows.
        await people.click("U_BOB", "C_OPS", msg.ts, label="Reject")
        bob = await people.dm_with("U_BOB", job)
        await emu.wait_for(lambda: not emu.message(bob.channel, bob.ts).buttons())
    finally:
        with emu._ws.lock:  # the people come back for the next tests
            emu._ws.users["U_FRANK"].deleted = emu._ws.users["U_ERIN"].dms_restricted = False


async def test_an_undecided_request_expires_everywhere_and_the_requester_is_told(people: PeopleEnv) -> None:
    emu = people.emu
    job, msg = await request(people, "spirit", user="U_CAROL")
    bob = await people.dm_with("U_BOB", job)
    people.clock.offset = timedelta(minutes=31)
    try:
        await people.monitor.tick()  # the monitor ends requests nobody decided on in time
    finally:
        people.clock.offset = timedelta()
    assert people.jobs()[-1] == (job, "purge", "expired")
    for where in (msg, bob):
        await emu.wait_for(lambda w=where: "Expired: nobody approved it within 30 minutes" in
                           str(emu.message(w.channel, w.ts).blocks))
        assert not emu.message(where.channel, where.ts).buttons()
    told = await people.dm_with("U_CAROL", f"`{job}` expired")
    assert "Nothing was deleted" in told.text
    await people.monitor.tick()  # a second sweep tells nobody twice
    await settle(0.5)
    assert len([m for m in emu.dm("U_CAROL") if f"`{job}` expired" in m.text]) == 1


async def test_the_requester_hears_of_the_approval_and_the_end_of_the_job(people: PeopleEnv) -> None:
    emu = people.emu
    job, msg = await request(people, "hilton")
    erin = await people.dm_with("U_ERIN", job)
    await people.click("U_ERIN", erin.channel, erin.ts, label="Approve")
    await emu.wait_for(lambda: any(f"Purge {job} started" in m.text for m in emu.thread("C_OPS", msg.ts)))
    approved = await people.dm_with("U_ALICE", f"`{job}` was approved by <@U_ERIN>")
    assert "/archives/C_OPS/p" in approved.text
    await asyncio.wait_for(people.deps.jobs.purge_result(job), 120)
    await people.monitor.tick()  # the monitor sees the end: the summary in the thread, a DM to the requester
    done = await people.dm_with("U_ALICE", f"Your purge `{job}` :white_check_mark: is done")
    assert f"/archives/C_OPS/p{msg.ts.replace('.', '')}" in done.text
    await people.monitor.tick()
    await settle(0.5)
    assert len([m for m in emu.dm("U_ALICE") if f"`{job}` :white_check_mark: is done" in m.text]) == 1
