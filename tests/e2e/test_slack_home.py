"""The App Home tab: what waits for an approver, what a requester's jobs are doing, publishing within limits,
and the Plan a backfill modal (every bad value answered on its field, nothing started)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.e2e.people_env import PeopleEnv, people_stack, settle
from tests.e2e.test_slack_backfill import job_id_in
from tests.e2e.test_slack_purge import RANGE


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def home(temporal_env: Any, make_demo: Any) -> AsyncIterator[PeopleEnv]:
    async with people_stack(temporal_env, make_demo(scale=0.002), socket=False) as env:
        yield env


def shown(env: PeopleEnv, user: str) -> str:
    view = env.emu.home(user)
    assert view is not None and view.view["type"] == "home"
    return json.dumps(view.view["blocks"], ensure_ascii=False)


def section(env: PeopleEnv, user: str, title: str) -> str:
    """The text of the Home tab's part under `title`, up to the next divider."""
    blocks = env.emu.home(user).view["blocks"]
    start = next(i for i, b in enumerate(blocks) if b["type"] == "header" and b["text"]["text"] == title)
    end = next((i for i in range(start + 1, len(blocks)) if blocks[i]["type"] == "divider"), len(blocks))
    return json.dumps(blocks[start + 1:end], ensure_ascii=False)


async def opened(env: PeopleEnv, user: str) -> str:
    before = env.emu.home_publishes(user)
    ack = await env.emu.open_home(user)
    assert ack.status == 200
    await env.emu.wait_for(lambda: env.emu.home_publishes(user) > before)
    return shown(env, user)


async def test_home_tab_of_an_approver_and_of_a_requester(home: PeopleEnv) -> None:
    emu = home.emu
    before = len(emu.messages("C_OPS"))
    await home.say("U_ALICE", f"/purge oportun --types 1-3 {RANGE}")
    msg = await home.top(before=before)
    job = job_id_in(msg.text, "p")

    await opened(home, "U_BOB")
    waiting = section(home, "U_BOB", "Waiting for your approval")
    assert job in waiting and "by <@U_ALICE>" in waiting and msg.buttons()[0][3] in waiting  # job:plan hash
    assert [b["text"]["text"] for b in emu.home("U_BOB").view["blocks"] if b["type"] == "header"] == [
        "Shepherd", "Waiting for your approval", "Your open jobs", "Your recent results"]

    await opened(home, "U_ALICE")
    assert job not in section(home, "U_ALICE", "Waiting for your approval")  # her own request
    assert f"`{job}` purge · awaiting approval" in section(home, "U_ALICE", "Your open jobs")
    assert "not an approver" in await opened(home, "U_DAVE")

    # bob approves from his Home tab: the purge starts, and both tabs follow without being reopened.
    published = emu.home_publishes("U_ALICE")
    ack = await emu.click_home("U_BOB", label="Approve")
    assert ack.status == 200
    await emu.wait_for(lambda: any(f"Purge {job} started" in m.text for m in emu.thread("C_OPS", msg.ts)))
    await emu.wait_for(lambda: job not in section(home, "U_BOB", "Waiting for your approval"))
    assert "Nothing waits for your approval" in section(home, "U_BOB", "Waiting for your approval")
    await emu.wait_for(lambda: emu.home_publishes("U_ALICE") > published)
    await asyncio.wait_for(home.deps.jobs.purge_result(job), 120)
    await home.monitor.tick()
    await emu.wait_for(lambda: f"`{job}` purge · done" in section(home, "U_ALICE", "Your recent results"))


async def test_a_running_job_shows_its_progress(home: PeopleEnv) -> None:
    emu = home.emu
    before = len(emu.messages("C_OPS"))
    await home.say("U_CAROL", "/backfill care-oregon --window 2d --from 2026-01-03 --to 2026-01-12 --parallel 1")
    status = await home.top(before=before)
    job = job_id_in(status.text)
    await emu.wait_for(lambda: emu.thread("C_OPS", status.ts))
    text = await opened(home, "U_CAROL")
    mine = section(home, "U_CAROL", "Your open jobs")
    assert f"`{job}` backfill" in mine and "windows)" in mine and "%" in mine, text
    await home.deps.jobs.wait(job)


async def test_republishing_is_coalesced_per_person(home: PeopleEnv) -> None:
    emu = home.emu
    await opened(home, "U_BOB")
    await settle(0.6)
    before = emu.home_publishes("U_BOB")
    for _ in range(20):  # twenty changes in a burst ...
        home.deps.changed(["U_BOB", "U_NEVER_OPENED"])
    await settle(1.5)
    after = emu.home_publishes("U_BOB")
    assert 1 <= after - before <= 2  # ... are one or two views.publish calls, not twenty
    assert emu.home("U_NEVER_OPENED") is None  # nobody who never opened the tab is published for


async def test_plan_a_backfill_modal_checks_every_field(home: PeopleEnv) -> None:
    emu = home.emu
    await opened(home, "U_CAROL")
    await emu.click_home("U_CAROL", label="Plan a backfill")
    modal = await emu.wait_for(lambda: next((v for v in emu.open_views("U_CAROL")
                                             if v.view.get("callback_id") == "backfill.plan"), None))
    labels = [b["label"]["text"] for b in modal.view["blocks"]]
    assert labels == ["Customers", "From", "To", "Window", "Parallelism", "Post the plan in"]
    jobs, posts = home.jobs(), len(emu.messages("C_OPS"))

    def values(customers: str, start: str | None, end: str | None, window: str, parallel: str | None,
               channel: str | None = "C_OPS") -> dict[str, dict[str, Any]]:
        return {"customers": {"value": customers}, "window": {"value": window},
                "from": {"value": {"type": "datepicker", "selected_date": start}},
                "to": {"value": {"type": "datepicker", "selected_date": end}},
                "parallel": {"value": {"type": "number_input", "value": parallel}},
                "channel": {"value": {"type": "conversations_select", "selected_conversation": channel}}}

    bad = await emu.submit_view("U_CAROL", modal.id, values("hiltn", "2026-01-10", "2026-01-03", "0d", "999"))
    answer = json.loads(bad.body)
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert set(errors) == {"customers", "to", "window", "parallel"}, errors
    assert "hiltn" in errors["customers"] and "hilton" in errors["customers"]  # did you mean
    assert "before the start" in errors["to"] and "at least 1d" in errors["window"]
    assert "at most" in errors["parallel"]
    missing = json.loads((await emu.submit_view("U_CAROL", modal.id, values("", None, None, "auto", None,
                                                                            None))).body)["errors"]
    assert set(missing) == {"customers", "channel"}
    assert not emu.view(modal.id).closed and home.jobs() == jobs and len(emu.messages("C_OPS")) == posts

    ok = await emu.submit_view("U_CAROL", modal.id, values("care-oregon", "2026-01-03", "2026-01-12", "5d", "2"))
    assert ok.status == 200 and ok.body == ""
    assert emu.view(modal.id).closed
    plan = await home.top(before=posts)
    assert "Backfill plan" in plan.text and "<@U_CAROL>" in str(plan.blocks)
    assert [b[1] for b in plan.buttons()] == ["Run", "Dismiss"]
    assert (job_id_in(plan.text), "backfill", "planned") in home.jobs()
