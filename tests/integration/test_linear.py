"""Linear: the client against the local stand-in (which validates every document against Linear's
published schema), the write-ups drafted from seed-week-like job rows in real Postgres, and
posting: once, after failures, after a crash between Linear's answer and our write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.adapters.linear import COMMENT_MUTATION, FIND_COMMENT_QUERY, ISSUE_QUERY, LinearClient
from bot.adapters.postgres import apply_migrations, make_pool
from bot.config import parse_config
from bot.embedded.demo import DemoSpec, demo_config
from bot.errors import ConflictError, NotAuthorized, UpstreamError, UserInputError
from bot.jobs.audit import AuditLog
from bot.jobs.records import JobRecords
from bot.ops.logs import JsonFormatter
from bot.registry import CustomerRegistry
from bot.standins.linear import LinearStandIn
from bot.temporal.models import BackfillProgress, ChunkState, PurgeProgress, WindowState
from bot.verify.service import VerifyService
from bot.writeups.service import WriteupService
from commands.models import (
    BackfillPlan,
    Chunk,
    ClusterPurgePlan,
    CustomerBackfillPlan,
    DateRange,
    PurgePlan,
    Window,
)
from commands.verify_report import compare

pytestmark = pytest.mark.integration

KEY = "lin_api_secret_do_not_leak_4242"
START = date(2026, 1, 3)
RANGE = DateRange(start=START, end=START + timedelta(days=50))
T0 = datetime(2026, 2, 21, 9, 0, tzinfo=UTC)
CONFIG = parse_config(demo_config(DemoSpec()), "demo config")
OTHERS = ("voice-prod", "chat-prod", "us-west-2", "eu-west-1", "ca-central-1", "ap-southeast-2", "email-prod")


@pytest.fixture()
def standin() -> Iterator[LinearStandIn]:
    with LinearStandIn(api_key=KEY) as s:
        s.add_issue("CONVI-6259", "Backfill scorecards (appeal cleanup)")
        yield s


@pytest_asyncio.fixture()
async def linear(standin: LinearStandIn) -> AsyncIterator[LinearClient]:
    async with LinearClient(standin.url, SecretStr(KEY), base_delay_s=0.01, max_delay_s=0.05) as client:
        yield client


@pytest.fixture()
def pool(pg_dsn: str) -> Iterator[Any]:
    p = make_pool(pg_dsn, max_size=6)
    apply_migrations(p)
    yield p
    p.close()


# ---- the client and the stand-in ------------------------------------------------------------


async def test_every_document_shepherd_sends_validates(standin: LinearStandIn, linear: LinearClient) -> None:
    issue = await linear.issue("CONVI-6259")
    assert issue.identifier == "CONVI-6259" and issue.url.endswith("/issue/CONVI-6259")
    made = await linear.comment(issue.id, "**hello**", comment_id="6a7c0f7e-7a51-4b52-9a43-2d1c3e4f5a6b")
    assert made.id == "6a7c0f7e-7a51-4b52-9a43-2d1c3e4f5a6b"
    assert await linear.find_comment(made.id) == made
    assert await linear.find_comment("00000000-0000-4000-8000-000000000000") is None
    assert standin.violations == []
    assert {d["query"] for d in standin.documents} == {ISSUE_QUERY, COMMENT_MUTATION, FIND_COMMENT_QUERY}
    assert all(d["valid"] for d in standin.documents)
    for doc, variables in ((ISSUE_QUERY, {"id": "X-1"}), (FIND_COMMENT_QUERY, {"id": "c"}),
                           (COMMENT_MUTATION, {"input": {"issueId": "X-1", "body": "b", "id": "u"}})):
        assert standin.check(doc, variables) == []


async def test_a_bad_document_or_bad_variables_are_caught(standin: LinearStandIn, linear: LinearClient) -> None:
    with pytest.raises(UpstreamError, match="rejected Shepherd's Bad request as invalid"):
        await linear.execute("query Bad { issue(id: 5) { identifier nope } }", {}, "Bad")
    with pytest.raises(UpstreamError, match="invalid"):
        await linear.execute(COMMENT_MUTATION, {"input": {"issueId": "CONVI-6259", "bodyy": "x"}}, "ShepherdComment")
    assert len(standin.violations) >= 3
    assert any("nope" in v for v in standin.violations) and any("bodyy" in v for v in standin.violations)
    assert standin.comments == []


async def test_bad_and_unknown_tickets_are_clear(standin: LinearStandIn, linear: LinearClient) -> None:
    for bad in ("convi-6259", "CONVI6259", "CONVI-", "x" * 300):
        with pytest.raises(UserInputError, match="is not a Linear issue id"):
            await linear.issue(bad)
    assert standin.documents == []  # refused before any request
    with pytest.raises(UserInputError, match="issue CONVI-9999 not found"):
        await linear.issue("CONVI-9999")


async def test_retries_5xx_and_429_and_honours_retry_after(standin: LinearStandIn) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with LinearClient(standin.url, SecretStr(KEY), base_delay_s=0.01, sleep=sleep) as client:
        standin.fail(503, times=2)
        standin.fail(429, times=1, retry_after="3")
        assert (await client.issue("CONVI-6259")).identifier == "CONVI-6259"
    assert waits == [0.01, 0.02, 3.0]


async def test_linear_down_and_a_bad_key_never_show_the_key(standin: LinearStandIn, linear: LinearClient,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    standin.down = True
    with pytest.raises(UpstreamError, match="Linear is unreachable") as down:
        await linear.issue("CONVI-6259")
    standin.down = False
    async with LinearClient(standin.url, SecretStr("wrong-key"), attempts=1) as wrong:
        with pytest.raises(UpstreamError, match="refused Shepherd's API key") as refused:
            await wrong.issue("CONVI-6259")
    for err in (down.value, refused.value):
        assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.reply()
    assert KEY not in caplog.text and KEY not in repr(linear)
    assert "wrong-key" not in caplog.text
    as_json = "\n".join(JsonFormatter().format(r) for r in caplog.records)  # SHEPHERD_LOG_FORMAT=json
    assert caplog.records and KEY not in as_json and "wrong-key" not in as_json


# ---- write-ups from job rows -------------------------------------------------------------------


def seed_jobs(pool: Any) -> None:
    """A seed-week-like set of finished jobs in one channel: a purge, a backfill, a verification."""
    records = JobRecords(pool)
    chunks: dict[str, list[Chunk]] = {"us-east-2": []}
    for i in range(51):  # oportun: one-day chunks, 100,000 scorecards and 900,000 scores a day
        d = START + timedelta(days=i)
        chunks["us-east-2"] += [Chunk(cluster="us-east-2", customer="oportun", table="scores", start=d, end=d,
                                      rows=900_000),
                                Chunk(cluster="us-east-2", customer="oportun", table="scorecards", start=d, end=d,
                                      rows=100_000)]
    for k, cluster in enumerate(OTHERS):  # the rest: 70,512,345 scorecards and 650,498,765 scores in all
        cards, scores = 9_344_620 + (5 if k == 0 else 0), 86_371_252 + (1 if k == 0 else 0)
        chunks[cluster] = [Chunk(cluster=cluster, customer=f"big-{k}", table="scores", start=START, end=RANGE.end,
                                 rows=scores),
                           Chunk(cluster=cluster, customer=f"big-{k}", table="scorecards", start=START,
                                 end=RANGE.end, rows=cards)]
    plan = PurgePlan(range=RANGE, types=(1, 2, 3), clusters=tuple(ClusterPurgePlan(cluster=c, chunks=tuple(v))
                                                                  for c, v in chunks.items()),
                     total_scorecards=70_512_345, total_scores=650_498_765, max_rows_per_mutation=1_000_000,
                     plan_hash="ph-purge")
    records.create("p-1a2b3c", "purge", "done", "U_ALICE", "C_OPS", plan, {})
    progress = PurgeProgress("p-1a2b3c", "done", False, None, {
        c: [ChunkState(i, ch.customer, ch.table, str(ch.start), str(ch.end), ch.rows, "done", ch.rows)
            for i, ch in enumerate(v)] for c, v in chunks.items()})
    windows = [Window(customer="hilton", cluster="chat-prod", start=START + timedelta(days=i),
                      end=min(START + timedelta(days=i + 4), RANGE.end), conversations=450_000, est_hours=(3, 5))
               for i in range(0, 51, 5)]
    spirit = [replace(w, customer="spirit", cluster="voice-prod") for w in windows]
    bplan = BackfillPlan(range=RANGE, customers=(
        CustomerBackfillPlan(customer="hilton", cluster="chat-prod", daily_avg=90_000, window_days=5,
                             rule=">= 80,000/day -> 5d", windows=tuple(windows)),
        CustomerBackfillPlan(customer="spirit", cluster="voice-prod", daily_avg=83_000, window_days=5,
                             rule=">= 80,000/day -> 5d", windows=tuple(spirit))),
        parallel=8, sequential_hours=(80, 120), makespan_hours=(10, 15), lower_bound_hours=(10, 15), plan_hash="ph-b")
    records.create("b-4d5e6f", "backfill", "done", "U_ALICE", "C_OPS", bplan, {})
    states = []
    for w in [*windows, *spirit]:
        s = WindowState(f"{w.customer}:{w.start}:{w.end}", w.customer, w.cluster, str(w.start), str(w.end), "done",
                        1, w.conversations, w.conversations, started=T0.isoformat(),
                        finished=(T0 + timedelta(hours=4)).isoformat(), region="local")
        states.append(s)
    states[0].attempt, states[0].last_failure, states[0].resumed_from = 2, "activity Heartbeat timeout", "2026-01-05"
    states[0].finished = (T0 + timedelta(hours=6, minutes=12)).isoformat()
    for s in states[len(windows):]:
        s.region = "us-east-1"
    states[len(windows) + 1].region = "us-west-2"
    writeups = WriteupService(pool, CONFIG)
    writeups.store_result("p-1a2b3c", progress)
    writeups.store_result("b-4d5e6f", BackfillProgress("b-4d5e6f", "done", 8, False, None, states))
    with pool.connection() as conn:
        conn.execute("UPDATE shepherd.jobs SET started_at = %s, finished_at = %s WHERE id = 'p-1a2b3c'",
                     (T0, T0 + timedelta(hours=6, minutes=38)))
        conn.execute("UPDATE shepherd.jobs SET started_at = %s, finished_at = %s WHERE id = 'b-4d5e6f'",
                     (T0 + timedelta(hours=7), T0 + timedelta(days=2, hours=3)))
        conn.execute("INSERT INTO shepherd.events_posted (job_id, event_key, posted_at) VALUES"
                     " ('b-4d5e6f', 'stall:hilton:2026-01-03', %s), ('b-4d5e6f', 'window_done:x', %s)", (T0, T0))
    AuditLog(pool).record("U_BOB", "/throttle", outcome="ok", text="/backfill throttle b-4d5e6f 8", channel="C_OPS")
    AuditLog(pool).record("U_BOB", "click purge.approve", target="p-1a2b3c", outcome="ok")
    report = compare(("hilton", "spirit"), [], [], [], start=START, end=RANGE.end, types=(1, 2, 3))
    registry = CustomerRegistry.from_config(CONFIG)
    VerifyService(CONFIG, registry, pool, None).record(pool, "v-0f0f0f", report, "U_ALICE", "C_OPS",  # type: ignore[arg-type]
                                                      linked_job="b-4d5e6f")
    with pool.connection() as conn:
        conn.execute("UPDATE shepherd.jobs SET started_at = %s, finished_at = %s WHERE id = 'v-0f0f0f'",
                     (T0 + timedelta(days=2, hours=4), T0 + timedelta(days=2, hours=4)))


def test_the_draft_carries_the_seed_weeks_numbers(pool: Any) -> None:
    seed_jobs(pool)
    writeups = WriteupService(pool, CONFIG)
    draft = writeups.draft("CONVI-6259", "C_OPS", "U_ALICE")  # default: every finished job in the channel
    md = draft.markdown
    assert draft.job_ids == ("p-1a2b3c", "b-4d5e6f", "v-0f0f0f") and draft.ticket == "CONVI-6259"
    assert "deleted 70,512,345 appeal scorecards (~70.5M) and 650,498,765 scores (~650.5M) from 8" in md
    assert "| us-east-2 | 5,100,000 | 45,900,000 | 102/102 |" in md
    assert "- oportun (us-east-2) needed 51 one-day chunks" in md
    assert "| hilton | chat-prod | 5d (>= 80,000/day -> 5d) | 11 | 4,950,000 | 4h 00m–6h 12m | 1 |" in md
    assert "failed 1x (activity Heartbeat timeout); resolved: attempt 2 resumed from 2026-01-05" in md
    assert "cluster voice-prod answered from region us-west-2 (fallback from us-east-1)" in md
    assert "b-4d5e6f: stall hilton 2026-01-03" in md and "window done" not in md
    assert "U_BOB: `/backfill throttle b-4d5e6f 8`" in md and "approve" not in md
    assert "- v-0f0f0f (" in md and "MATCH: 2 of 2 customers match" in md
    with pytest.raises(UserInputError, match="no finished jobs since the last write-up"):
        writeups.draft("CONVI-6259", "C_OPS", "U_ALICE")
    again = writeups.draft("CONVI-6259", "C_OPS", "U_ALICE", job_ids=("b-4d5e6f",))  # + its linked verification
    assert again.job_ids == ("b-4d5e6f", "v-0f0f0f") and "Deleted from ClickHouse" not in again.markdown
    assert writeups.draft("CONVI-6259", "C_OPS", "U_ALICE", since=date(2026, 2, 1)).job_ids == draft.job_ids
    with pytest.raises(UserInputError, match="no job b-000000"):
        writeups.draft("CONVI-6259", "C_OPS", "U_ALICE", job_ids=("b-000000",))
    weekly = writeups.weekly("C_OPS", "U_ALICE", T0 + timedelta(days=3), team="CONVI")
    assert weekly.markdown.startswith("Weekly Summary (CONVI): Feb 21–23, 2026\n\nProgress\n")
    assert "Deleted ~70.5M scorecards + ~650.5M scores" in weekly.markdown
    assert f"(draft {again.id} is not posted yet)" in weekly.markdown


async def test_posting_twice_makes_one_comment(pool: Any, standin: LinearStandIn, linear: LinearClient) -> None:
    seed_jobs(pool)
    writeups = WriteupService(pool, CONFIG)
    draft = writeups.draft("CONVI-6259", "C_OPS", "U_ALICE")
    edited = writeups.edit(draft.id, draft.markdown + "\nEdited by a person.", "U_BOB")
    first, second = await asyncio.gather(writeups.post(draft.id, linear), writeups.post(draft.id, linear),
                                         return_exceptions=True)
    outcomes = sorted(type(x).__name__ for x in (first, second))
    assert outcomes in (["ConflictError", "Posted"], ["Posted", "Posted"])
    third = await writeups.post(draft.id, linear)
    assert third.already and len(standin.comments) == 1
    assert standin.comments[0]["body"] == edited.markdown and standin.comments[0]["issue"]["identifier"] == "CONVI-6259"
    stored = writeups.get(draft.id)
    assert stored.comment_url == third.comment.url and stored.posted_at is not None
    with pytest.raises(ConflictError, match="already posted"):
        writeups.edit(draft.id, "late edit", "U_BOB")
    assert standin.violations == []


async def test_unknown_ticket_and_linear_down_keep_the_draft(pool: Any, standin: LinearStandIn,
                                                             linear: LinearClient) -> None:
    seed_jobs(pool)
    writeups = WriteupService(pool, CONFIG)
    lost = writeups.draft("CONVI-9999", "C_OPS", "U_ALICE")
    with pytest.raises(UserInputError, match="issue CONVI-9999 not found"):
        await writeups.post(lost.id, linear)
    kept = writeups.get(lost.id)
    assert kept.comment_id is None and kept.posting_at is None and "not found" in (kept.last_error or "")

    draft = writeups.draft("CONVI-6259", "C_OPS", "U_ALICE", job_ids=("p-1a2b3c",))
    standin.down = True
    with pytest.raises(UpstreamError, match="Linear is unreachable"):
        await writeups.post(draft.id, linear)
    assert writeups.get(draft.id).comment_id is None and standin.comments == []
    standin.down = False
    posted = await writeups.post(draft.id, linear)  # later, the same draft posts fine
    assert not posted.already and len(standin.comments) == 1 and standin.violations == []


async def test_a_crash_between_linears_answer_and_our_write_makes_no_second_comment(
        pool: Any, standin: LinearStandIn, linear: LinearClient) -> None:
    seed_jobs(pool)
    writeups = WriteupService(pool, CONFIG)
    draft = writeups.draft("CONVI-6259", "C_OPS", "U_ALICE")
    claimed = writeups._claim(draft.id)  # a process claims the draft, reaches Linear ... and dies
    assert claimed is not None and claimed.comment_uuid
    issue = await linear.issue("CONVI-6259")
    await linear.comment(issue.id, claimed.markdown, comment_id=claimed.comment_uuid)
    with pytest.raises(ConflictError, match="being posted right now"):  # its claim is still fresh
        await writeups.post(draft.id, linear)
    with pool.connection() as conn:  # ... until it is stale
        conn.execute("UPDATE shepherd.linear_drafts SET posting_at = now() - interval '10 minutes'")
    posted = await writeups.post(draft.id, linear)
    assert posted.comment.id == claimed.comment_uuid and len(standin.comments) == 1
    assert writeups.get(draft.id).comment_id == claimed.comment_uuid


# ---- the Slack flow, against the Slack stand-in ------------------------------------------------


def slack_deps(pool: Any, client: Any) -> Any:
    from bot.jobs.approvals import Approvals
    from bot.planning import PlanningService
    from bot.slack.deps import SlackDeps

    registry = CustomerRegistry.from_config(CONFIG)
    return SlackDeps(CONFIG, PlanningService(CONFIG, registry, pool, None),  # type: ignore[arg-type]
                     None, JobRecords(pool), Approvals(pool, CONFIG.access), AuditLog(pool), client)  # type: ignore[arg-type]


async def test_the_slack_flow_drafts_edits_and_posts_once(pool: Any, standin: LinearStandIn,
                                                         linear: LinearClient) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Who
    from bot.slack.linear_flow import LinearFlow, ticket_errors
    from bot.slack.messages import note
    from bot.slack.out import SlackOut
    from bot.standins.slack.emulator import SlackEmulator
    from commands.verbs import LinearDraft, LinearPost, LinearWeekly

    seed_jobs(pool)
    with SlackEmulator(signing_secret="s", bot_token="xoxb-t") as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_user("U_BOB", "bob")
        emu.add_channel("C_OPS", "ops", members=["U_ALICE", "U_BOB"])
        client = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        deps = slack_deps(pool, client)
        replies: list[dict[str, Any]] = []

        async def respond(**kwargs: Any) -> None:
            replies.append(kwargs)

        alice, bob = Who("U_ALICE", "C_OPS", "ops", respond), Who("U_BOB", "C_OPS", "ops", respond)
        root = (await client.chat_postMessage(channel="C_OPS", text="Backfill b-4d5e6f"))["ts"]
        deps.records.set_message("b-4d5e6f", "status", "C_OPS", root)
        flow = LinearFlow(deps, SlackOut(client, deps.records), WriteupService(pool, CONFIG), linear)

        draft_id = await flow.draft(LinearDraft(ticket="CONVI-6259"), alice)
        shown = emu.thread("C_OPS", root)[-1]  # the one job thread among the draft's jobs
        assert [(b[1], b[2], b[3]) for b in shown.buttons()] == [("Post to Linear", "linear.post", draft_id),
                                                                 ("Edit", "linear.edit", draft_id)]
        assert "70,512,345" in str(shown.blocks)

        await flow.edit(draft_id, alice, emu._views.new_trigger("U_ALICE"))
        (view,) = emu.open_views("U_ALICE")
        assert view.view["callback_id"] == "linear.edit" and view.view["private_metadata"] == draft_id
        text = "\n".join(b["element"]["initial_value"] for b in view.view["blocks"])
        assert text == WriteupService(pool, CONFIG).get(draft_id).markdown
        values = {b["block_id"]: {"text": {"type": "plain_text_input", "value": b["element"]["initial_value"]}}
                  for b in view.view["blocks"]}
        values["part0"]["text"]["value"] = "## Edited by Alice\n" + values["part0"]["text"]["value"]
        await flow.save_edit(view.as_slack("T", "A", "B", values), alice)
        assert "Edited by Alice" in str(emu.message("C_OPS", shown.ts).blocks)

        with pytest.raises(NotAuthorized, match="only operators may post to Linear"):
            await flow.post(draft_id, bob)
        await flow.post(draft_id, alice)
        assert len(standin.comments) == 1 and standin.comments[0]["body"].startswith("## Edited by Alice")
        assert "Posted to <https://linear.app/" in emu.thread("C_OPS", root)[-1].text
        assert emu.message("C_OPS", shown.ts).buttons() == []
        await flow.post_ticket(LinearPost(ticket="CONVI-6259"), alice)  # /linear post: the same draft, again
        assert len(standin.comments) == 1 and "already posted" in replies[-1]["text"]

        with pytest.raises(UpstreamError, match="Linear is not configured"):
            await LinearFlow(deps, SlackOut(client, deps.records), WriteupService(pool, CONFIG), None).post("1", alice)
        weekly_id = await flow.weekly(LinearWeekly(team="CONVI"), alice)
        top = emu.messages("C_OPS")[-1]
        assert [b[2] for b in top.buttons()] == ["linear.edit"] and weekly_id != draft_id

        await flow.ask_ticket("p-1a2b3c", alice, emu._views.new_trigger("U_ALICE"))  # the job summary's button
        (asked,) = [x for x in emu.open_views("U_ALICE") if x.view["callback_id"] == "linear.ticket"]
        typed = lambda text: asked.as_slack("T", "A", "B", {"ticket": {"text": {"value": text}}})  # noqa: E731
        assert ticket_errors(typed("nope")) == {"ticket": "'NOPE' is not a ticket id like CONVI-6259"}
        assert ticket_errors(typed(" convi-6259 ")) is None
        submitter = await flow.view_who({"user": {"id": "U_BOB"}, "view": typed("x")})
        await submitter.reply(note("Bob's modal went wrong"))
        assert submitter.channel == "C_OPS" and emu.ephemerals("U_BOB", "C_OPS")[-1].text == "Bob's modal went wrong"
        job_draft = await flow.draft_for_job(typed("convi-6259"), alice)
        assert WriteupService(pool, CONFIG).get(job_draft).job_ids == ("p-1a2b3c",)
        assert emu.contract_violations == [] and standin.violations == []
