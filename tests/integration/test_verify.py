"""Verification on the demo dataset (real embedded Postgres and chdb).

The demo loads ClickHouse as production was BEFORE the cleanup: appeal rows included. So "clean"
here means: after deleting every appeal row (scores first) with a plain ALTER TABLE ... DELETE,
which is the state a finished purge leaves; before that, verify must report the appeal rows of
every customer that has any, and nothing else.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import pytest

from bot.adapters.clusters import ClusterLookup, LookupResult
from bot.cli.verify import add_verify_parser, run_verify
from bot.errors import UserInputError
from bot.registry import CustomerRegistry
from bot.settings import Settings
from bot.verify.service import VerifyService
from commands.verify_report import report_text

pytestmark = pytest.mark.integration

HILTON_DAY = date(2026, 1, 20)
OREGON_DAY = date(2026, 2, 2)


class CountingLookup(ClusterLookup):
    """The real lookup; also counts the queries each cluster's connection is asked."""

    def __init__(self, inner: ClusterLookup) -> None:
        super().__init__(inner.clusters.values(), inner.resolver, inner.settings)
        self.queries: dict[str, int] = {}

    def connect(self, cluster_name: str) -> LookupResult:
        found = super().connect(cluster_name)
        client, counts = found.client, self.queries

        class Counted:
            database = client.database

            def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
                counts[cluster_name] = counts.get(cluster_name, 0) + 1
                return client.query(sql, params)

        found.client = Counted()  # type: ignore[assignment]
        return found


def purge_appeals(env: Any, types: Sequence[int] = (1, 2, 3)) -> None:
    for cluster in {c.cluster for c in CustomerRegistry.from_config(env.config).all()}:
        ch = env.ch(cluster)
        db = f"`{ch.database}`"
        params = {"t": list(types)}
        ch.command(f"ALTER TABLE {db}.scores DELETE WHERE scorecard_id IN (SELECT scorecard_id FROM {db}.scorecards"
                   " WHERE scorecard_type IN {t:Array(UInt8)}) SETTINGS mutations_sync = 2", params)
        ch.command(f"ALTER TABLE {db}.scorecards DELETE WHERE scorecard_type IN {{t:Array(UInt8)}}"
                   " SETTINGS mutations_sync = 2", params)


def service(env: Any, lookup: ClusterLookup | None = None) -> VerifyService:
    return VerifyService(env.config, CustomerRegistry.from_config(env.config), env.pool, lookup or env.lookup)


@pytest.fixture(scope="module")
def before(make_demo: Callable[..., Any]) -> Any:
    return make_demo(scale=0.002)


@pytest.fixture(scope="module")
def clean(make_demo: Callable[..., Any]) -> Any:
    env = make_demo(scale=0.002)
    purge_appeals(env)
    return env


def test_before_the_cleanup_only_the_appeal_rows_differ(before: Any) -> None:
    report = service(before).verify()
    with before.pool.connection() as conn:
        appeal = dict(conn.execute("SELECT customer_id, count(*) FROM scorecards WHERE scorecard_type <= 3"
                                   " GROUP BY 1").fetchall())
    assert report.count_customers == ()  # every non-appeal count matches
    assert set(report.appeal_customers) == set(appeal)
    assert report.totals.appeal_scorecards == sum(appeal.values())
    assert report.totals.appeal_scores > 8 * report.totals.appeal_scorecards
    assert {m.table for m in report.mismatches} == {"appeal scorecards", "appeal scores"}
    assert report_text(report).splitlines()[-1].startswith(f"Verdict: MISMATCH: {len(appeal)} of 95 customers")


def test_a_clean_dataset_verifies_clean_with_one_query_per_cluster(clean: Any) -> None:
    lookup = CountingLookup(clean.lookup)
    report = service(clean, lookup).verify()
    assert report.ok, report_text(report)
    assert len(report.customers) == 95 and report.matching == 95
    assert lookup.queries == {c.name: 1 for c in clean.config.clusters}
    pg = clean.pg_counts("hilton")
    assert report.totals.postgres_scorecards >= sum(v[0] for v in pg.values())
    assert report.totals.clickhouse_scores == report.totals.postgres_scores
    assert report_text(report).endswith("no appeal rows (types 1-3) in ClickHouse.")
    assert set(report.timings) >= {"postgres", "clickhouse", "total"}


def test_a_planted_mismatch_is_reported_exactly(make_demo: Callable[..., Any]) -> None:
    env = make_demo(scale=0.002)
    purge_appeals(env)
    hilton = env.pg_counts("hilton")[HILTON_DAY]
    ch = env.ch("chat-prod")
    db = f"`{ch.database}`"
    for table in ("scores", "scorecards"):
        ch.command(f"ALTER TABLE {db}.{table} DELETE WHERE customer_id = 'hilton' AND day = {{d:Date}}"
                   " SETTINGS mutations_sync = 2", {"d": HILTON_DAY})
    oregon = env.ch("us-west-2")
    odb = f"`{oregon.database}`"
    oregon.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"], f"care-oregon,{OREGON_DAY},999999991,1,2,{OREGON_DAY} 10:00:00\n"
                                                    .encode())
    oregon.insert_csv("scores", ["customer_id", "day", "scorecard_id", "criterion_id", "value"],
                      f"care-oregon,{OREGON_DAY},999999991,1,5\ncare-oregon,{OREGON_DAY},999999991,2,7\n".encode())
    assert oregon.query(f"SELECT count() FROM {odb}.scorecards WHERE scorecard_type = 2")[0][0] == 1

    report = service(env).verify()
    got = [(m.customer, m.day, m.table, m.postgres, m.clickhouse, m.difference) for m in report.mismatches]
    assert got == [
        ("care-oregon", OREGON_DAY, "appeal scorecards", 0, 1, 1),
        ("care-oregon", OREGON_DAY, "appeal scores", 0, 2, 2),
        ("hilton", HILTON_DAY, "scorecards", hilton[0], 0, -hilton[0]),
        ("hilton", HILTON_DAY, "scores", hilton[1], 0, -hilton[1]),
    ]
    assert report.mismatching == ("care-oregon", "hilton") and report.matching == 93
    text = report_text(report)
    assert "Mismatching: care-oregon (3 appeal rows); hilton (1 day differ)" in text
    assert f"hilton       {HILTON_DAY}  scorecards" in text

    only_type_1 = service(env).verify(("care-oregon",), types=(1,))  # --types 1: the type-2 row is not asked for
    assert only_type_1.ok and only_type_1.types == (1,)
    one_day = service(env).verify(("hilton",), start=HILTON_DAY, end=HILTON_DAY)
    assert [m.table for m in one_day.mismatches] == ["scorecards", "scores"]


def test_a_sample_is_seeded_weighted_and_stated(clean: Any) -> None:
    svc = service(clean)
    first = svc.verify(sample=10, seed=7)
    again = svc.verify(sample=10, seed=7)
    assert first.customers == again.customers and len(first.customers) == 10
    assert first.seed == 7 and first.population == 95 and first.ok
    assert "Sample: 10 of 95 customers, drawn at random weighted by volume, seed 7" in report_text(first)
    big = {"hilton", "marriott", "spirit", "oportun", "united-east"}
    drawn = [set(svc.verify(sample=5, seed=s).customers) for s in range(6)]
    assert sum(len(d & big) for d in drawn) >= 15  # five big customers of 95 hold about half the volume
    assert svc.verify(sample=3).seed is not None  # no seed given: one is drawn, and stated


def test_bad_input_is_refused_before_any_query(clean: Any) -> None:
    svc = service(clean)
    with pytest.raises(UserInputError, match="unknown customer: hiltn"):
        svc.verify(("hiltn",))
    with pytest.raises(UserInputError, match="is after"):
        svc.verify(("hilton",), start=date(2026, 2, 1), end=date(2026, 1, 1))


def test_the_cli_checks_its_input_first(tmp_path: Any) -> None:
    parser = argparse.ArgumentParser()
    add_verify_parser(parser.add_subparsers(dest="command"))
    settings = Settings(data_dir=tmp_path / "nothing-here", postgres_dsn=None)
    cases = {("sample:0",): "at least 1", ("hilton", "--types", "x"): "--types", ("hilton", "--seed", "3"): "--seed",
             ("nobody",): "unknown customer", ("hilton", "--from", "2026-13-01"): "not a real calendar date"}
    for argv, message in cases.items():
        args = parser.parse_args(["verify", *argv])
        with pytest.raises(UserInputError, match=message):
            run_verify(settings, args, date(2026, 2, 24))
    assert not (tmp_path / "nothing-here").exists()  # nothing started


async def test_the_slack_flow_posts_the_report_here_or_in_the_jobs_thread(before: Any, clean: Any) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.jobs.approvals import Approvals
    from bot.jobs.audit import AuditLog
    from bot.jobs.records import JobRecords
    from bot.planning import PlanningService
    from bot.slack.deps import SlackDeps, Who
    from bot.slack.out import SlackOut
    from bot.slack.verify_flow import VerifyFlow
    from bot.standins.slack.emulator import SlackEmulator
    from commands.grammar import parse
    from commands.models import DateRange, PurgePlan

    replies: list[dict[str, Any]] = []

    async def respond(**kwargs: Any) -> None:
        replies.append(kwargs)

    with SlackEmulator(signing_secret="s", bot_token="xoxb-t") as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops", members=["U_ALICE"])
        client = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        who = Who("U_ALICE", "C_OPS", "ops", respond)

        def flow(env: Any) -> VerifyFlow:
            registry = CustomerRegistry.from_config(env.config)
            deps = SlackDeps(env.config, PlanningService(env.config, registry, env.pool, env.lookup),
                             None, JobRecords(env.pool), Approvals(env.pool, env.config.access),  # type: ignore[arg-type]
                             AuditLog(env.pool), client)
            return VerifyFlow(deps, SlackOut(client, deps.records), service(env))

        job_id = await flow(before).run(parse("/verify", "all"), who)  # type: ignore[arg-type]
        msg = emu.messages("C_OPS")[-1]
        assert msg.text.startswith(f"Verification {job_id}: MISMATCH") and job_id.startswith("v-")
        assert "more rows not shown" in str(msg.blocks) and "Verdict" not in msg.text
        assert "Verifying all customers" in replies[-1]["text"]
        row = JobRecords(before.pool).get(job_id)
        assert row.kind == "verify" and row.state == "mismatch" and row.plan is not None
        assert len(row.plan["mismatches"]) == 20 and row.plan["mismatches_not_listed"] > 0

        records = JobRecords(clean.pool)
        plan = PurgePlan(range=DateRange(start=date(2026, 1, 3), end=date(2026, 1, 3)), types=(1, 2, 3), clusters=(),
                         total_scorecards=0, total_scores=0, max_rows_per_mutation=1, plan_hash="h")
        records.create("p-abcdef", "purge", "done", "U_ALICE", "C_OPS", plan, {})
        root = (await client.chat_postMessage(channel="C_OPS", text="Purge p-abcdef"))["ts"]
        records.set_message("p-abcdef", "status", "C_OPS", root)
        done = await flow(clean).run(parse("/verify", "hilton,oportun --job p-abcdef"), who)  # type: ignore[arg-type]
        (reply,) = emu.thread("C_OPS", root)
        assert reply.text.startswith(f"Verification {done}: MATCH: 2 of 2 customers")
        assert records.get(done).params["job"] == "p-abcdef"
        with pytest.raises(UserInputError, match="unknown customer"):
            await flow(clean).run(parse("/verify", "nobody --job p-abcdef"), who)  # type: ignore[arg-type]
        assert emu.contract_violations == []


def test_the_cli_end_to_end_on_the_embedded_stack(tmp_path: Any) -> None:
    """`shepherd verify` in its own process (chdb allows one data path per process)."""
    import json
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

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env,
                              timeout=300)

    done = cli("hilton,care-oregon", "--json")  # the demo is loaded as before the cleanup: appeal rows remain
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["checked"] == 2 and doc["mismatching"] == 2 and doc["appeal_customers"] == ["care-oregon", "hilton"]
    assert {m["table"] for m in doc["mismatches"]} == {"appeal scorecards", "appeal scores"}
    assert doc["mismatches_not_listed"] == 0 and doc["totals"]["postgres_scores"] > 0
    sampled = cli("sample:3", "--seed", "11", "--rows", "2")
    assert sampled.returncode == 1 and "seed 11 (repeat it with --seed 11)" in sampled.stdout
    assert "more rows (of" in sampled.stdout and sampled.stdout.splitlines()[-1].startswith("Verdict: MISMATCH")


def test_a_finished_jobs_own_scope_can_be_verified(clean: Any) -> None:
    from bot.planning import BackfillRequest, PlanningService

    planning = PlanningService(clean.config, CustomerRegistry.from_config(clean.config), clean.pool, clean.lookup)
    plan = planning.plan_backfill(BackfillRequest(("hilton", "united-east")), date(2026, 2, 24))
    report = service(clean).verify_job("backfill", plan.model_dump(mode="json"))
    assert report.ok and report.customers == ("hilton", "united-east")
    assert (report.start, report.end) == (plan.range.start, plan.range.end)
    with pytest.raises(UserInputError, match="nothing to verify"):
        service(clean).verify_job("purge", {"clusters": []})
