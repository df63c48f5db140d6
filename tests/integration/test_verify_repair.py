"""The repair plan on the demo dataset (real embedded Postgres and chdb) with differences of every kind
injected: it names exactly the differing days, and carried out with the backfill's own reindex pipeline
and the purge engine's own chunk filter, it leaves 0 differences and every other day unchanged."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, timedelta
from typing import Any

import pytest

from bot.backfill.reindex import Reindexer
from bot.purge.target import chunk_target
from bot.registry import CustomerRegistry
from bot.temporal.models import ChunkSpec
from bot.verify.checksums import ClickHouseChecksums, PostgresChecksums
from commands.repair import findings_hash, plan_json, plan_repair, plan_text

from .test_verify_deep import HILTON, OREGON_DAY, deep
from .test_verify_deep import injected as injected  # noqa: F401  (the fixture, re-used)

pytestmark = pytest.mark.integration

APPEAL_DAY = OREGON_DAY + timedelta(days=2)  # a day whose only difference is an appeal scorecard and its score


@pytest.fixture(scope="module")
def broken(injected: tuple[Any, dict[str, Any]]) -> Any:  # noqa: F811
    env, _ = injected
    oregon = env.ch("us-west-2")
    oregon.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"], f"care-oregon,{APPEAL_DAY},999999995,1,3,{APPEAL_DAY} 09:00:00\n"
                      .encode())
    oregon.insert_csv("scores", ["customer_id", "day", "scorecard_id", "criterion_id", "value"],
                      f"care-oregon,{APPEAL_DAY},999999995,1,4\n".encode())
    return env


def _all_day_sums(env: Any) -> dict[tuple[str, date], Any]:
    names = [c.name for c in CustomerRegistry.from_config(env.config).all()]
    sums = {("pg",) + k: v.key() for k, v in PostgresChecksums(env.config, env.pool).days(
        names, date(2025, 1, 1), date(2027, 1, 1)).items()}
    for cluster in {c.cluster for c in CustomerRegistry.from_config(env.config).all()}:
        side = ClickHouseChecksums(env.config, env.ch(cluster))
        sums.update({("ch",) + k: v.key() for k, v in side.days(names, date(2025, 1, 1), date(2027, 1, 1)).items()})
    return sums  # type: ignore[return-value]


def _carry_out(env: Any, doc: dict[str, Any]) -> None:
    """What the repair's jobs do: each window through the backfill's reindex pipeline, each purge through
    the purge engine's chunk filter (scores before their scorecards)."""
    for b in doc["backfills"]:
        reindex = Reindexer(env.config, env.pool, env.ch(b["cluster"]))
        for start, end in b["windows"]:
            reindex.run(b["customer"], date.fromisoformat(start), date.fromisoformat(end))
    for p in doc["purges"]:
        ch = env.ch(p["cluster"])
        for table in ("scores", "scorecards"):
            target = chunk_target(ch, env.config.target, ChunkSpec(0, p["customer"], table, p["from"], p["to"], 0),
                                  doc["types"], f"repair-{table}")
            target.issue("mutation")
            deadline = time.monotonic() + 60
            while target.live() and time.monotonic() < deadline:
                time.sleep(0.2)


async def test_verify_repair_in_slack_posts_the_plan_under_the_report_or_refuses(broken: Any, tmp_path: Any) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.errors import NotAuthorized, UserInputError
    from bot.jobs.approvals import Approvals
    from bot.jobs.audit import AuditLog
    from bot.jobs.records import JobRecords
    from bot.planning import PlanningService
    from bot.slack.deps import SlackDeps, Who
    from bot.slack.out import SlackOut
    from bot.slack.verify_flow import VerifyFlow
    from bot.standins.slack.emulator import SlackEmulator
    from bot.verify.service import VerifyService
    from commands.grammar import parse

    env = broken

    replies: list[str] = []

    async def respond(**kwargs: Any) -> None:
        replies.append(str(kwargs.get("text", "")))

    with SlackEmulator(signing_secret="s", bot_token="xoxb-t") as emu:
        for user in ("U_ALICE", "U_BOB"):
            emu.add_user(user, user[2:].lower())
        emu.add_channel("C_OPS", "ops", members=["U_ALICE", "U_BOB"])
        client = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        registry = CustomerRegistry.from_config(env.config)
        deps = SlackDeps(env.config, PlanningService(env.config, registry, env.pool, env.lookup), None,  # type: ignore[arg-type]
                         JobRecords(env.pool), Approvals(env.pool, env.config.access), AuditLog(env.pool), client,
                         chart_dir=tmp_path)
        service = VerifyService(env.config, registry, env.pool, env.lookup)
        flow = VerifyFlow(deps, SlackOut(client, deps.records), service)
        alice, bob = Who("U_ALICE", "C_OPS", "ops", respond), Who("U_BOB", "C_OPS", "ops", respond)  # type: ignore[arg-type]
        job = await flow.run(parse("/verify", "hilton,care-oregon --deep"), alice)  # type: ignore[arg-type]
        counted = await flow.run(parse("/verify", "hilton"), alice)  # type: ignore[arg-type]
        clean = await flow.run(parse("/verify", "oportun --deep"), alice)  # type: ignore[arg-type]
        report_ts = next(m.ts for m in emu.messages("C_OPS") if m.text.startswith(f"Verification {job}:"))
        thread_before = len(emu.thread("C_OPS", report_ts))

        def repair(text: str, who: Any = alice) -> Any:
            return flow.repair(parse("/verify", f"repair {text}"), who)  # type: ignore[arg-type]

        with pytest.raises(NotAuthorized, match="only operators may repair a verification's differences"):
            await repair(job, bob)
        with pytest.raises(UserInputError, match="no job v-000000"):
            await repair("v-000000")
        with pytest.raises(UserInputError, match=f"{counted} compared counts only"):
            await repair(counted)
        with pytest.raises(UserInputError, match=f"{clean} found no difference: nothing to repair"):
            await repair(clean)
        ch = env.ch("chat-prod")  # data changed since the report: one more row on a differing day
        ch.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"], f"hilton,{HILTON[0]},999999997,1,5,{HILTON[0]} 08:00:00\n".encode())
        with pytest.raises(UserInputError, match=f"the data changed since {job}"):
            await repair(job)
        ch.command(f"ALTER TABLE `{ch.database}`.scorecards DELETE WHERE scorecard_id = 999999997"
                   " SETTINGS mutations_sync = 2")
        assert len(emu.thread("C_OPS", report_ts)) == thread_before  # nothing posted by any refusal

        report = next(m for m in emu.messages("C_OPS") if m.ts == report_ts)
        assert "'action_id': 'verify.repair'" in str(report.blocks) and f"'value': '{job}'" in str(report.blocks)
        assert not any("verify.repair" in str(m.blocks) for m in emu.messages("C_OPS")
                       if m.text.startswith(f"Verification {clean}:"))  # no Repair button on a clean report

        from bot.slack.router import Router
        router = Router(deps)
        replies.clear()
        await asyncio.gather(router.button("verify.repair", job, alice), router.button("verify.repair", job, alice))
        plans = [m for m in emu.thread("C_OPS", report_ts) if m.text.startswith("Repair plan")]
        assert len(plans) == 1  # two clicks, one plan
        assert any("already posted under its report; nothing was posted again" in r for r in replies), replies
        plan_msg = plans[0]
        assert plan_msg.text.startswith(f"Repair plan for verification {job}: Repair of report ")
        blocks = str(plan_msg.blocks)
        assert f"/backfill hilton --from {HILTON[0]} --to {HILTON[-1]}" in blocks
        assert f"/backfill care-oregon --from {OREGON_DAY} --to {OREGON_DAY}" in blocks
        assert f"/purge care-oregon --types 1,2,3 --from {APPEAL_DAY} --to {APPEAL_DAY}" in blocks
        assert "nothing has run" in blocks
        assert emu.contract_violations == []


def test_the_repair_plan_fixes_exactly_the_differing_days(broken: Any) -> None:
    env = broken
    report = deep(env).verify()
    clusters = {c.name: c.cluster for c in CustomerRegistry.from_config(env.config).all()}
    plan = plan_repair(report, clusters, env.config.windows, env.config.throughput)
    # hilton's four contiguous days are one re-backfill run; care-oregon's appeal-and-extra day another;
    # its appeal-only day a purge of 2 rows.
    assert [(b.customer, b.start, b.end) for b in plan.backfills] == [
        ("care-oregon", OREGON_DAY, OREGON_DAY), ("hilton", HILTON[0], HILTON[-1])]
    assert [(p.customer, p.start, p.end, p.scorecards, p.scores) for p in plan.purges] == [
        ("care-oregon", APPEAL_DAY, APPEAL_DAY, 1, 1)]
    assert set(plan.pairs) == {("hilton", d) for d in HILTON} | {("care-oregon", OREGON_DAY),
                                                                ("care-oregon", APPEAL_DAY)}
    hilton_rows = sum(s.postgres for s in report.day_sizes if s.customer == "hilton")
    assert plan.backfills[1].rows == hilton_rows > 0 and plan.rows_deleted == 2
    assert 0 < plan.rows_ratio <= 1.0
    assert f"delete 2 appeal rows ({plan.rows_ratio:.2f}" in plan_text(plan)

    # Bound to the report: verified again with nothing changed, the same hash; anything changed, another.
    assert findings_hash(deep(env).verify(("hilton", "care-oregon"), start=HILTON[0], end=APPEAL_DAY),
                         plan.pairs) == plan.report_hash

    before = _all_day_sums(env)
    _carry_out(env, json.loads(json.dumps(plan_json(plan))))
    after = _all_day_sums(env)
    touched = set(plan.pairs)
    assert {k: v for k, v in after.items() if k[1:] not in touched} == {
        k: v for k, v in before.items() if k[1:] not in touched}  # every other day's checksums unchanged

    again = deep(env).verify(("hilton", "care-oregon"), start=HILTON[0], end=APPEAL_DAY)
    assert again.ok and again.rows == () and again.days_differing == ()
    assert plan_repair(again, clusters, env.config.windows, env.config.throughput).empty
    assert findings_hash(again, plan.pairs) != plan.report_hash  # the plan no longer applies


def test_the_cli_prints_the_plan_and_its_json(tmp_path: Any) -> None:
    """`shepherd verify care-oregon --repair-plan --json` in its own process on the embedded stack before the
    cleanup: every differing day holds only appeal rows, so the plan is purges only, of every appeal row."""
    import os
    import subprocess
    import sys

    data = tmp_path / "stack"
    data.mkdir()
    (data / "demo.json").write_text(json.dumps({"scale": 0.002, "seed": 7}))
    script = ("import argparse, sys; from datetime import date; from bot.settings import Settings;"
              " from bot.cli.verify import add_verify_parser, run_verify; p = argparse.ArgumentParser();"
              " add_verify_parser(p.add_subparsers(dest='command')); a = p.parse_args(['verify', *sys.argv[1:]]);"
              " sys.exit(run_verify(Settings(), a, date(2026, 2, 24)))")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHEPHERD_")}, "SHEPHERD_DATA_DIR": str(data)}
    done = subprocess.run([sys.executable, "-c", script, "care-oregon", "--repair-plan", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stdout, done.stderr
    doc = json.loads(done.stdout)
    repair, totals = doc["repair"], doc["totals"]
    assert repair["backfills"] == [] and repair["purges"]
    assert repair["rows_deleted"] == totals["appeal_scorecards"] + totals["appeal_scores"]
    assert {p["customer"] for p in repair["purges"]} == {"care-oregon"} and len(repair["report_hash"]) == 16
    text = subprocess.run([sys.executable, "-c", script, "care-oregon", "--repair-plan"], capture_output=True,
                          text=True, env=env, timeout=300).stdout
    assert f"delete {repair['rows_deleted']:,} appeal rows" in text and "needs its approval" in text
