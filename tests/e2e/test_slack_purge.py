"""The purge approval flow: two-person rule, act-once buttons, expiry, and plans whose data changed."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from bot.embedded.demo import NAMED
from tests.e2e.conftest import SlackEnv
from tests.e2e.test_slack_backfill import job_id_in

RANGE = "--from 2026-01-03 --to 2026-01-09"


async def request(slack: SlackEnv, customer: str, before: int | None = None) -> tuple[str, object]:
    before = len(slack.emu.messages("C_OPS")) if before is None else before
    await slack.say("U_ALICE", f"/purge {customer} --types 1-3 {RANGE}")
    msg = await slack.top(before=before)
    assert "Purge request" in msg.text, msg.text
    assert [b[1] for b in msg.buttons()] == ["Approve", "Reject"]
    return job_id_in(msg.text, "p"), msg


def appeal_rows(slack: SlackEnv, customer: str) -> int:
    ch = slack.demo.ch(NAMED[customer][0])
    return int(ch.query(f"SELECT count() FROM `{ch.database}`.scorecards WHERE customer_id = {{c:String}}"
                        " AND scorecard_type <= 3 AND day BETWEEN '2026-01-03' AND '2026-01-09'",
                        {"c": customer})[0][0])


async def test_approval_rules_then_the_purge_runs_in_the_thread(slack: SlackEnv) -> None:
    emu = slack.emu
    assert appeal_rows(slack, "hilton") > 0
    job, msg = await request(slack, "hilton")
    assert slack.jobs()[-1] == (job, "purge", "awaiting_approval")

    for user, expected in (("U_ALICE", "someone else"), ("U_DAVE", "not an approver"), ("U_CAROL", "not an approver")):
        seen = len(slack.replies(user))
        await emu.click(user, "C_OPS", msg.ts, label="Approve")
        assert expected in await slack.reply_to(user, seen)
    assert slack.jobs()[-1] == (job, "purge", "awaiting_approval") and appeal_rows(slack, "hilton") > 0

    # Bob approves twice at once: it acts once.
    await asyncio.gather(emu.click("U_BOB", "C_OPS", msg.ts, label="Approve"),
                         emu.click("U_BOB", "C_OPS", msg.ts, label="Approve"))
    approved = await emu.wait_for(lambda: "Approved by <@U_BOB>" in str(emu.message("C_OPS", msg.ts).blocks))
    assert approved and not emu.message("C_OPS", msg.ts).buttons()
    await emu.wait_for(lambda: any(f"Purge {job} started" in m.text for m in emu.thread("C_OPS", msg.ts)))
    await asyncio.wait_for(slack.deps.jobs.purge_result(job), 120)
    assert appeal_rows(slack, "hilton") == 0
    thread = [m.text for m in emu.thread("C_OPS", msg.ts)]
    assert any(f"Purge {job} started" in t for t in thread), thread
    with slack.demo.pool.connection() as conn:
        approvals = conn.execute("SELECT approver, decision FROM shepherd.approvals WHERE job_id = %s",
                                 (job,)).fetchall()
    assert approvals == [("U_BOB", "approve")]
    outcomes = [(a, act, o) for a, act, o in slack.audit() if act == "click purge.approve"]
    assert ("U_BOB", "click purge.approve", "ok") in outcomes
    assert sum(o.startswith("refused") for _, _, o in outcomes) == 4  # alice, dave, carol, bob's second click


async def test_reject_ends_the_request(slack: SlackEnv) -> None:
    job, msg = await request(slack, "spirit")
    await slack.emu.click("U_BOB", "C_OPS", msg.ts, label="Reject")
    await slack.emu.wait_for(lambda: "Rejected by <@U_BOB>" in str(slack.emu.message("C_OPS", msg.ts).blocks))
    assert slack.jobs()[-1] == (job, "purge", "rejected")
    seen = len(slack.replies("U_BOB"))
    await slack.emu.click("U_BOB", "C_OPS", msg.ts, label="Approve") if slack.emu.message(
        "C_OPS", msg.ts).buttons() else None
    assert len(slack.replies("U_BOB")) == seen and appeal_rows(slack, "spirit") > 0


async def test_expired_approval_deletes_nothing(slack: SlackEnv) -> None:
    job, msg = await request(slack, "marriott")
    slack.clock.offset = timedelta(minutes=31)
    try:
        seen = len(slack.replies("U_BOB"))
        await slack.emu.click("U_BOB", "C_OPS", msg.ts, label="Approve")
        assert "expired" in await slack.reply_to("U_BOB", seen)
    finally:
        slack.clock.offset = timedelta()
    assert slack.jobs()[-1] == (job, "purge", "expired") and appeal_rows(slack, "marriott") > 0


async def test_approval_of_a_plan_whose_data_changed_starts_nothing(slack: SlackEnv) -> None:
    job, msg = await request(slack, "united-east")
    before = appeal_rows(slack, "united-east")
    ch = slack.demo.ch(NAMED["united-east"][0])
    ch.command(f"INSERT INTO `{ch.database}`.scorecards (customer_id, day, scorecard_id, conversation_id,"
               " scorecard_type, created_at) VALUES ('united-east', {d:Date}, 999999001, 1, 2, now())",
               {"d": date(2026, 1, 5)})
    seen = len(slack.replies("U_BOB"))
    await slack.emu.click("U_BOB", "C_OPS", msg.ts, label="Approve")
    assert "data changed" in await slack.reply_to("U_BOB", seen)
    assert slack.jobs()[-1] == (job, "purge", "stale")
    assert "Nothing was deleted" in str(slack.emu.message("C_OPS", msg.ts).blocks)
    assert appeal_rows(slack, "united-east") == before + 1
