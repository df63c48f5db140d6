"""Block Kit messages stay within Slack's limits for the largest plans, and say what they summarise."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from slack_sdk.models.blocks import SectionBlock

from bot.monitor.job_view import snapshots
from bot.slack import blocks, job_blocks, status_blocks
from bot.slack.messages import MAX_BLOCKS, Message, MessageTooLarge, section, table_sections
from bot.temporal.models import BackfillProgress, WindowState
from commands.chunks import plan_purge
from commands.models import CustomerRef, DateRange, DayVolume, PurgeDayCount, PurgePolicy, Throughput, WindowPolicy
from commands.schedule import plan_backfill

SEED = DateRange(start=date(2026, 1, 3), end=date(2026, 2, 22))
NAMES = [f"customer-{i:03d}" for i in range(95)]


def big_backfill() -> object:
    refs = [CustomerRef(name=n, cluster=f"cluster-{i % 8}") for i, n in enumerate(NAMES)]
    volumes = [DayVolume(customer=n, day=d, conversations=1_000 * (i + 1)) for i, n in enumerate(NAMES)
               for d in SEED.each_day()]
    return plan_backfill(volumes, refs, SEED, WindowPolicy(), Throughput(), 8)


def test_a_95_customer_plan_fits_and_summarises_the_tail() -> None:
    plan = big_backfill()
    msg = blocks.backfill_plan(plan, "b-123456", "U_ALICE")  # type: ignore[arg-type]
    payload = msg.as_kwargs()
    assert len(payload["blocks"]) <= MAX_BLOCKS
    text = str(payload["blocks"])
    assert "customer-094" in text  # the largest customer is listed by name
    assert "+65 more" in text  # the 65 smallest are summed in one row
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in payload["blocks"])
    buttons = [e["text"]["text"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Run", "Dismiss"]


def test_purge_request_has_approve_and_reject_bound_to_the_plan_hash() -> None:
    refs = [CustomerRef(name=n, cluster=f"cluster-{i % 8}") for i, n in enumerate(NAMES)]
    counts = [PurgeDayCount(cluster=f"cluster-{i % 8}", customer=n, day=d, scorecards=500, scores=4_500)
              for i, n in enumerate(NAMES) for d in SEED.each_day()]
    plan = plan_purge(counts, refs, SEED, (1, 2, 3), PurgePolicy(max_rows_per_mutation=100_000))
    msg = blocks.purge_plan(plan, "p-abcdef", "U_ALICE", approval="needs 1 approval", buttons=True).as_kwargs()
    assert len(msg["blocks"]) <= MAX_BLOCKS
    values = [e["value"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert values == [f"p-abcdef:{plan.plan_hash}"] * 2
    assert f"{plan.total_scorecards:,} scorecards" in msg["text"]


def test_long_tables_split_into_sections_then_summarise() -> None:
    lines = [f"row {i:05d} " + "x" * 90 for i in range(1000)]
    parts = table_sections(lines, "_and the rest_")
    assert all(isinstance(p, SectionBlock) for p in parts)
    texts = [p.to_dict()["text"]["text"] for p in parts]
    assert all(len(t) <= 3000 for t in texts[:-1]) and texts[-1] == "_and the rest_"
    shown = "".join(texts[:-1])
    assert "row 00000" in shown and "row 00999" not in shown
    assert not any(line.startswith("row") and len(line) < 100 for t in texts for line in t.split("\n"))  # no cut rows


def test_too_many_blocks_is_refused_when_built() -> None:
    with pytest.raises(MessageTooLarge):
        Message("x", [section(str(i)) for i in range(51)]).as_kwargs()


def test_progress_of_200_windows_fits() -> None:
    windows = [WindowState(key=str(i), customer=f"c{i}", cluster="x", start="2026-01-03", end="2026-01-07",
                           state="running" if i % 3 else "done", done=i * 10, total=2_000) for i in range(200)]
    p = BackfillProgress(job_id="b-123456", state="running", parallel=8, paused=False, start_at=None, windows=windows)
    figures = status_blocks.JobFigures(12.0, 1_000, 400_000, 50.0, (60.0, 90.0))
    status = status_blocks.backfill_status("b-123456", "U_ALICE", "running", snapshots(p), {}, figures,
                                           datetime(2026, 2, 1, tzinfo=UTC), listed=200)
    windows[5] = dataclasses.replace(windows[5], state="failed", last_failure="boom " * 40)
    payload = job_blocks.with_failures(status, p).as_kwargs()
    assert len(payload["blocks"]) <= MAX_BLOCKS
    assert "67 done, 133 running" in payload["text"]
    assert "last failure" in str(payload["blocks"]) and "updated 2026-02-01" in str(payload["blocks"][-1])
