"""A person plans, runs, watches, cancels (confirmed by button) and retries a backfill from Slack."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import SlackEnv, ack_text

# A start well ahead, inside the --at horizon (14 days by default): the job waits for the whole test.
LATER = f"{datetime.now(UTC) + timedelta(days=10):%Y-%m-%dT%H:%M}"


def job_id_in(text: str, kind: str = "b") -> str:
    found = re.search(rf"\b{kind}-[0-9a-f]{{6}}\b", text)
    assert found, text
    return found.group(0)


async def test_plan_then_run_by_button_then_status(slack: SlackEnv) -> None:
    emu = slack.emu
    before = len(emu.messages("C_OPS"))
    ack = await slack.say("U_ALICE", "/backfill plan hilton --window 5d --from 2026-01-03 --to 2026-01-22")
    assert ack.status == 200 and ack_text(ack) == ""
    plan_msg = await slack.top(before=before)
    assert "Backfill plan" in plan_msg.text and "4 windows" in plan_msg.text, plan_msg.text
    assert [b[1] for b in plan_msg.buttons()] == ["Run", "Dismiss"]
    job = job_id_in(plan_msg.text)
    assert (job, "backfill", "planned") in slack.jobs()

    # A double click: both reach the app; the job starts once.
    await asyncio.gather(emu.click("U_ALICE", "C_OPS", plan_msg.ts, label="Run"),
                         emu.click("U_ALICE", "C_OPS", plan_msg.ts, label="Run"))
    status = await slack.top(before=before + 1)
    assert f"Backfill {job}" in status.text
    # The plan message is closed: no buttons, and it says who ran it.
    closed = await emu.wait_for(lambda: (m := emu.message("C_OPS", plan_msg.ts)) and not m.buttons() and m)
    assert "run by <@U_ALICE>" in str(closed.blocks)
    # Controls in the thread (slash commands cannot be typed there), posted once the job started.
    await emu.wait_for(lambda: any("Pause" in [b[1] for b in m.buttons()] for m in emu.thread("C_OPS", status.ts)))
    progress = await slack.deps.jobs.wait(job)
    assert progress.state == "done" and all(w.state == "done" for w in progress.windows)
    assert sum(w.done for w in progress.windows) > 0

    seen = len(slack.replies("U_ALICE"))
    await slack.say("U_ALICE", f"/backfill status {job}")
    answer = await slack.reply_to("U_ALICE", seen)
    assert f"Backfill {job}: done" in answer
    assert [j for j in slack.jobs() if j[0] == job] == [(job, "backfill", "done")]
    assert len([m for m in emu.messages("C_OPS") if f"Backfill {job}" in m.text]) == 1  # one status message
    assert any("no longer acts" in r for r in slack.replies("U_ALICE"))
    actions = [a for _, a, _ in slack.audit()]
    assert "/backfill_plan" in actions and "click backfill.run" in actions


async def test_run_later_cancel_with_confirmation_then_retry(slack: SlackEnv) -> None:
    emu = slack.emu
    status = await slack.post("U_CAROL", f"/backfill spirit --from 2026-01-03 --to 2026-01-12 --at {LATER}")
    job = job_id_in(status.text)
    assert "waiting until" in status.text
    await emu.wait_for(lambda: emu.thread("C_OPS", status.ts))  # started: the controls are in the thread

    seen = len(slack.replies("U_CAROL"))
    await slack.say("U_CAROL", f"/backfill cancel {job}")
    await slack.reply_to("U_CAROL", seen)
    confirm = [m for m in emu.ephemerals("U_CAROL") if m.buttons()][-1]
    assert [b[1] for b in confirm.buttons()] == [f"Yes, cancel {job}", "No"]
    assert (await slack.deps.jobs.progress(job)).state == "waiting"  # nothing happened before the click

    await emu.click("U_CAROL", "C_OPS", confirm.ts, index=1)
    progress = await slack.deps.jobs.wait(job)
    assert progress.state == "cancelled"
    said = await emu.wait_for(lambda: [m.text for m in emu.thread("C_OPS", status.ts) if "cancel requested" in m.text])
    assert "<@U_CAROL>" in said[0]

    seen = len(slack.replies("U_CAROL"))
    await slack.say("U_CAROL", f"/backfill retry {job} --failed-only")
    assert "retry of" in await slack.reply_to("U_CAROL", seen)
    final = await slack.deps.jobs.wait(job)
    assert final.state == "done" and final.run == 2


async def test_throttle_pause_resume_refused_for_non_operator(slack: SlackEnv) -> None:
    status = await slack.post("U_ALICE", f"/backfill marriott --from 2026-01-03 --to 2026-01-06 --at {LATER}")
    job = job_id_in(status.text)
    await slack.emu.wait_for(lambda: slack.emu.thread("C_OPS", status.ts))
    for text in (f"/backfill throttle {job} 2", f"/backfill pause {job}", f"/backfill resume {job}"):
        seen = len(slack.replies("U_DAVE"))
        await slack.say("U_DAVE", text)
        assert "only operators" in await slack.reply_to("U_DAVE", seen)
    seen = len(slack.replies("U_ALICE"))
    await slack.say("U_ALICE", f"/backfill throttle {job} 2")
    assert "throttled to 2" in await slack.reply_to("U_ALICE", seen)
    await slack.deps.jobs.cancel(job)
    await asyncio.wait_for(slack.deps.jobs.wait(job), 30)



async def test_parallel_auto_then_throttle_by_hand_then_auto_again(slack: SlackEnv) -> None:
    status = await slack.post("U_ALICE", "/backfill marriott --from 2026-01-03 --to 2026-01-06 --parallel auto "
                                         f"--at {LATER}")
    job = job_id_in(status.text)
    assert "parallel auto" in status.text, status.text
    await slack.emu.wait_for(lambda: slack.emu.thread("C_OPS", status.ts))
    assert (await slack.deps.jobs.progress(job)).autopilot
    seen = len(slack.replies("U_ALICE"))
    await slack.say("U_ALICE", f"/backfill throttle {job} 2")
    said = await slack.reply_to("U_ALICE", seen)
    assert "throttled to 2" in said and f"autopilot off until `/backfill throttle {job} auto`" in said, said
    held = await slack.deps.jobs.progress(job)
    assert not held.autopilot and held.parallel == 2
    seen = len(slack.replies("U_ALICE"))
    await slack.say("U_ALICE", f"/backfill throttle {job} auto")
    assert "autopilot on" in await slack.reply_to("U_ALICE", seen)
    back = await slack.deps.jobs.progress(job)
    assert back.autopilot and back.parallel == 2  # it goes on from the N it was given
    thread = [m.text for m in slack.emu.thread("C_OPS", status.ts)]
    assert any("autopilot off until" in t for t in thread) and any("autopilot on" in t for t in thread)
    await slack.deps.jobs.cancel(job)
    await asyncio.wait_for(slack.deps.jobs.wait(job), 30)
