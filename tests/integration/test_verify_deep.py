"""Deep verification on the demo dataset (real embedded Postgres and chdb): differences of every kind
are injected, and `--deep` names exactly those rows, where the count verification misses the re-scored
and swapped ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from bot.registry import CustomerRegistry
from bot.verify.deep import DeepVerifier
from bot.verify.service import VerifyService
from commands.deep_report import deep_json, deep_text

from .test_verify import purge_appeals

pytestmark = pytest.mark.integration

HILTON = [date(2026, 1, 20), date(2026, 1, 21), date(2026, 1, 22), date(2026, 1, 23)]
OREGON_DAY = date(2026, 2, 2)


def deep(env: Any) -> DeepVerifier:
    return DeepVerifier(VerifyService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup))


def _cards(env: Any, customer: str, day: date, n: int) -> list[int]:
    """The first n non-appeal scorecards of the day that have at least two scores."""
    with env.pool.connection() as conn:
        rows = conn.execute(
            "SELECT s.id FROM scorecards s WHERE s.customer_id = %s AND (s.created_at AT TIME ZONE 'UTC')::date = %s"
            " AND s.scorecard_type > 3 AND (SELECT count(*) FROM scores x WHERE x.scorecard_id = s.id) >= 2"
            " ORDER BY s.id LIMIT %s", (customer, day, n)).fetchall()
    assert len(rows) == n
    return [int(r[0]) for r in rows]


def _criteria(env: Any, card: int) -> list[int]:
    with env.pool.connection() as conn:
        return [int(r[0]) for r in conn.execute(
            "SELECT criterion_id FROM scores WHERE scorecard_id = %s ORDER BY criterion_id", (card,)).fetchall()]


@pytest.fixture(scope="module")
def clean(make_demo: Callable[..., Any]) -> Any:
    env = make_demo(scale=0.002)
    purge_appeals(env)
    return env


def test_a_clean_dataset_verifies_clean_row_by_row(clean: Any) -> None:
    report = deep(clean).verify()
    assert report.ok, deep_text(report)
    assert report.rows == () and report.days_differing == () and report.days_checked > 1000
    assert report.segments_checked == 0 and report.rows_fetched == 0
    assert deep_text(report).splitlines()[-1].startswith("Verdict: MATCH: 95 of 95 customers match Postgres row by row")
    sampled = deep(clean).verify(sample=5, seed=3)  # the draw decides the scope of the checksums too
    assert sampled.ok and len(sampled.counts.customers) == 5 and sampled.counts.seed == 3
    assert 0 < sampled.days_checked <= 5 * 51


@pytest.fixture(scope="module")
def injected(make_demo: Callable[..., Any]) -> tuple[Any, dict[str, Any]]:
    """A clean demo with differences of every kind injected; and the ids they touched."""
    env = make_demo(scale=0.002)
    purge_appeals(env)
    ch, oregon = env.ch("chat-prod"), env.ch("us-west-2")
    db, odb = f"`{ch.database}`", f"`{oregon.database}`"
    deleted, = _cards(env, "hilton", HILTON[0], 1)
    dup_card, = _cards(env, "hilton", HILTON[1], 1)
    rescored, changed_card = _cards(env, "hilton", HILTON[2], 2)
    swap_lost, swap_dup = _cards(env, "hilton", HILTON[3], 2)
    rescored_crit, lost_crit = _criteria(env, rescored)[0], _criteria(env, swap_lost)[1]
    dup_crit = _criteria(env, swap_dup)[0]
    deleted_crits = _criteria(env, deleted)

    # ClickHouse: a scorecard deleted with its scores; a scorecard duplicated; one score lost and another
    # duplicated on one day (counts unchanged); an appeal scorecard and its scores; a scorecard Postgres lacks.
    for table in ("scores", "scorecards"):
        ch.command(f"ALTER TABLE {db}.{table} DELETE WHERE scorecard_id = {{i:UInt64}} SETTINGS mutations_sync = 2",
                   {"i": deleted})
    ch.command(f"INSERT INTO {db}.scorecards SELECT * FROM {db}.scorecards WHERE scorecard_id = {{i:UInt64}}",
               {"i": dup_card})
    ch.command(f"ALTER TABLE {db}.scores DELETE WHERE scorecard_id = {{i:UInt64}} AND criterion_id = {{k:UInt32}}"
               " SETTINGS mutations_sync = 2", {"i": swap_lost, "k": lost_crit})
    ch.command(f"INSERT INTO {db}.scores SELECT * FROM {db}.scores WHERE scorecard_id = {{i:UInt64}}"
               " AND criterion_id = {k:UInt32}", {"i": swap_dup, "k": dup_crit})
    oregon.insert_csv("scorecards", ["customer_id", "day", "scorecard_id", "conversation_id", "scorecard_type",
                                     "created_at"],
                      f"care-oregon,{OREGON_DAY},999999991,1,2,{OREGON_DAY} 10:00:00\n"
                      f"care-oregon,{OREGON_DAY},999999992,1,5,{OREGON_DAY} 11:00:00\n".encode())
    oregon.insert_csv("scores", ["customer_id", "day", "scorecard_id", "criterion_id", "value"],
                      f"care-oregon,{OREGON_DAY},999999991,1,5\ncare-oregon,{OREGON_DAY},999999991,2,7\n".encode())
    assert oregon.query(f"SELECT count() FROM {odb}.scorecards WHERE scorecard_id > 999999990")[0][0] == 2
    # Postgres, after the backfill: one score re-scored, one scorecard's conversation changed.
    with env.pool.connection() as conn:
        conn.execute("UPDATE scores SET value = value + 1 WHERE scorecard_id = %s AND criterion_id = %s",
                     (rescored, rescored_crit))
        conn.execute("UPDATE scorecards SET conversation_id = conversation_id + 1 WHERE id = %s", (changed_card,))
    return env, {"deleted": deleted, "deleted_crits": deleted_crits, "dup_card": dup_card, "rescored": rescored,
                 "rescored_crit": rescored_crit, "changed_card": changed_card, "swap_lost": swap_lost,
                 "lost_crit": lost_crit, "swap_dup": swap_dup, "dup_crit": dup_crit}


def test_before_the_cleanup_every_appeal_row_is_named_or_the_budget_says_so(make_demo: Callable[..., Any]) -> None:
    env = make_demo(scale=0.002)
    service = VerifyService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup)
    report = DeepVerifier(service, max_fetched=10**7).verify(("hilton", "oportun"))
    t = report.counts.totals
    assert report.by_kind == {"appeal": t.appeal_scorecards + t.appeal_scores} and report.unnamed_segments == 0
    part = DeepVerifier(service, max_fetched=2_000).verify(("hilton", "oportun"))
    assert part.unnamed_segments > 0 and 0 < len(part.rows) < len(report.rows) and part.rows_fetched <= 2_000 + 500
    assert set(part.rows) <= set(report.rows) and "Only part of the rows are named" in deep_text(part)


def test_every_kind_of_difference_is_named_exactly(injected: tuple[Any, dict[str, Any]]) -> None:
    env, ids = injected
    deleted, deleted_crits, dup_card, rescored, rescored_crit, changed_card, swap_lost, lost_crit, swap_dup, \
        dup_crit = ids.values()
    report = deep(env).verify()
    got = {(d.customer, d.table, d.kind, d.scorecard_id, d.criterion_id, d.columns) for d in report.rows}
    assert got == {
        ("hilton", "scorecards", "missing", deleted, None, ()),
        *{("hilton", "scores", "missing", deleted, k, ()) for k in deleted_crits},
        ("hilton", "scorecards", "duplicated", dup_card, None, ()),
        ("hilton", "scores", "changed", rescored, rescored_crit, ("value",)),
        ("hilton", "scorecards", "changed", changed_card, None, ("conversation_id",)),
        ("hilton", "scores", "missing", swap_lost, lost_crit, ()),
        ("hilton", "scores", "duplicated", swap_dup, dup_crit, ()),
        ("care-oregon", "scorecards", "appeal", 999999991, None, ()),
        ("care-oregon", "scores", "appeal", 999999991, 1, ()),
        ("care-oregon", "scores", "appeal", 999999991, 2, ()),
        ("care-oregon", "scorecards", "extra", 999999992, None, ()),
    }
    assert len(report.rows) == len(got)  # each named once
    assert set(report.days_differing) == {("hilton", d) for d in HILTON} | {("care-oregon", OREGON_DAY)}
    assert [d.copies for d in report.rows if d.kind == "duplicated"] == [2, 2]

    # The counts of the deep pass are the count verification's own.
    alone = VerifyService(env.config, CustomerRegistry.from_config(env.config), env.pool, env.lookup).verify()
    assert report.counts.mismatches == alone.mismatches and report.counts.totals == alone.totals
    # The count verification sees the deleted, duplicated and extra rows, not the re-scored or swapped ones.
    count_days = {(m.customer, m.day) for m in report.counts.mismatches}
    assert ("hilton", HILTON[0]) in count_days and ("hilton", HILTON[1]) in count_days
    assert ("hilton", HILTON[2]) not in count_days and ("hilton", HILTON[3]) not in count_days

    doc = deep_json(report)
    assert doc["ok"] is False and len(doc["deep"]["rows"]) == len(got) and doc["deep"]["rows_not_listed"] == 0
    assert doc["deep"]["by_kind"] == {"missing": 1 + len(deleted_crits) + 1, "changed": 2, "appeal": 3,
                                      "duplicated": 2, "extra": 1}
    rescore_row = next(r for r in doc["deep"]["rows"] if r["kind"] == "changed" and r["table"] == "scores")
    assert rescore_row["postgres"]["value"] == rescore_row["clickhouse"]["value"] + 1
    text = deep_text(report)
    assert "MISMATCH: 2 of 95 customers differ" in text and "appeal row present" in text
    assert report.rows_fetched < 2000  # only small segments were read, not the differing days whole


def test_a_narrow_deep_check_sees_only_its_scope(injected: tuple[Any, dict[str, Any]]) -> None:
    env, ids = injected
    report = deep(env).verify(("hilton",), start=HILTON[2], end=HILTON[2])
    assert report.counts.ok and not report.ok  # the counts match; the content does not
    assert {(d.kind, d.scorecard_id) for d in report.rows} == {("changed", ids["rescored"]),
                                                              ("changed", ids["changed_card"])}
    assert deep_text(report).splitlines()[-1].endswith("The counts alone match: only the checksums see these.")


async def test_slack_shows_a_summary_the_first_rows_and_a_chart(injected: tuple[Any, dict[str, Any]],
                                                                 tmp_path: Any) -> None:
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

    env, ids = injected
    replies: list[dict[str, Any]] = []

    async def respond(**kwargs: Any) -> None:
        replies.append(kwargs)

    with SlackEmulator(signing_secret="s", bot_token="xoxb-t") as emu:
        emu.add_user("U_ALICE", "alice")
        emu.add_channel("C_OPS", "ops", members=["U_ALICE"])
        client = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        registry = CustomerRegistry.from_config(env.config)
        deps = SlackDeps(env.config, PlanningService(env.config, registry, env.pool, env.lookup), None,  # type: ignore[arg-type]
                         JobRecords(env.pool), Approvals(env.pool, env.config.access), AuditLog(env.pool), client,
                         chart_dir=tmp_path)
        flow = VerifyFlow(deps, SlackOut(client, deps.records),
                          VerifyService(env.config, registry, env.pool, env.lookup))
        job_id = await flow.run(parse("/verify", "hilton --deep"), Who("U_ALICE", "C_OPS", "ops", respond))  # type: ignore[arg-type]
        assert "row by row (--deep)" in replies[-1]["text"]
        msg = emu.messages("C_OPS")[-1]
        assert msg.text.startswith(f"Verification {job_id}: MISMATCH: 1 of 1 customers differ")
        blocks = str(msg.blocks)
        assert "Differing rows:" in blocks and "hilton (" in blocks and "changed" in blocks
        assert str(ids["rescored"]) in blocks  # the first rows are listed
        row = JobRecords(env.pool).get(job_id)
        assert row.state == "mismatch" and row.plan is not None
        assert row.plan["deep"]["by_kind"]["changed"] == 2 and len(row.plan["deep"]["rows"]) <= 20
        [chart] = emu.thread("C_OPS", msg.ts)  # differing rows per day, under the report
        assert [f["title"] for f in chart.files] == [f"Verification {job_id}: differing rows per day, by kind"]
        assert emu.file_bytes(chart.files[0]["id"]).startswith(b"\x89PNG")
        assert emu.contract_violations == []


def test_the_cli_lists_every_row_as_json(tmp_path: Any) -> None:
    """`shepherd verify --deep --json` in its own process on the embedded stack (loaded as before the
    cleanup: the appeal rows are the only difference, and every one of them is listed)."""
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
    done = subprocess.run([sys.executable, "-c", script, "care-oregon", "--deep", "--json"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    rows, totals = doc["deep"]["rows"], doc["totals"]
    assert len(rows) == totals["appeal_scorecards"] + totals["appeal_scores"] > 20
    assert doc["deep"]["rows_not_listed"] == 0
    assert {r["kind"] for r in rows} == {"appeal"} and {r["customer"] for r in rows} == {"care-oregon"}
    assert all(r["clickhouse"]["scorecard_id"] == r["scorecard_id"] and r["postgres"] is None for r in rows)
    assert doc["deep"]["by_kind"] == {"appeal": len(rows)} and doc["ok"] is False
