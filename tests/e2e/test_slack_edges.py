"""Inputs at the edges (issue 19): limits only go down from chat, dates stay in a sane span, --at inside its
horizon, ranges without data are refused. Each gets a clear private answer with the usage line; no job is
recorded, nothing is posted in the channel, no workflow starts and the data stays as it was."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.conftest import SlackEnv, ack_text

# (command text, phrases the answer must contain)
EDGES = [
    ("/purge oportun --max-rows 100000000000000000000",
     ["--max-rows 100,000,000,000,000,000,000 is above the configured cap", "purge.max_rows_per_mutation"]),
    ("/purge plan oportun --max-rows 1601", ["above the configured cap of 1,600 rows per mutation"]),
    ("/purge all --types 4-9", ["--types: 4, 5, 6, 7, 8, 9 are not purgeable", "allowed types are 1, 2, 3"]),
    ("/purge plan hilton --types 0", ["--types: 0 is not purgeable"]),
    ("/backfill plan hilton --parallel 17", ["--parallel 17 must be between 1 and 16", "backfill.max_parallel"]),
    ("/backfill hilton --at 2020-01-01T00:00",
     ["--at 2020-01-01 00:00 UTC is in the past; leave --at out to start now"]),
    ("/backfill hilton --at 2090-01-01T00:00", ["more than 14 days ahead"]),
    ("/backfill hilton --at 9999-12-31T23:59-23:00", ["--at"]),
    ("/backfill plan hilton --from 0001-01-01 --to 9999-12-31", ["--from 0001-01-01 is before 2000-01-01"]),
    ("/backfill plan hilton --to 9999-12-31", ["--to 9999-12-31 is after"]),
    ("/purge plan oportun --from 1970-01-01", ["before 2000-01-01"]),
    ("/verify all --from 0001-01-01 --to 9999-12-31", ["--from 0001-01-01 is before 2000-01-01"]),
    ("/verify hilton --from 2026-06-01 --to 2026-06-30", ["nothing to verify in that range"]),
    ("/backfill plan hilton --from 2026-06-01 --to 2026-06-30", ["nothing to backfill in that range"]),
    ("/backfill hilton --from 2026-06-01 --to 2026-06-30", ["nothing to backfill in that range"]),
    ("/purge oportun --from 2026-06-01 --to 2026-06-30", ["nothing to delete in that range"]),
    ("/purge plan oportun --from 2026-06-01 --to 2026-06-30", ["nothing to delete in that range"]),
]


def _data(slack: SlackEnv) -> tuple[Any, ...]:
    """What a job could change: ClickHouse's rows of oportun and hilton, and the source's scorecards."""
    with slack.demo.pool.connection() as conn:
        source = conn.execute("SELECT count(*) FROM scorecards").fetchone()[0]
    return (source, sorted(slack.demo.ch_counts("oportun", "us-east-2", appeal=True).items()),
            sorted(slack.demo.ch_counts("hilton", "chat-prod", appeal=False).items()))


async def _workflows(slack: SlackEnv) -> int:
    client = slack.deps.jobs.client
    return (await client.count_workflows()).count


@pytest.mark.parametrize(("text", "phrases"), EDGES, ids=[e[0] for e in EDGES])
async def test_edge_input_is_refused_and_changes_nothing(slack: SlackEnv, text: str, phrases: list[str]) -> None:
    before = slack.jobs(), len(slack.emu.messages("C_OPS")), _data(slack), await _workflows(slack)
    seen = len(slack.replies("U_ALICE"))
    delivery = await slack.say("U_ALICE", text)
    assert delivery.status == 200
    answer = ack_text(delivery) or await slack.reply_to("U_ALICE", seen)
    assert answer.startswith(":x:"), answer
    for phrase in phrases:
        assert phrase in answer, answer
    assert "Usage: `/" in answer, answer
    assert "went wrong" not in answer, answer
    await asyncio.sleep(0.05)
    assert (slack.jobs(), len(slack.emu.messages("C_OPS")), _data(slack), await _workflows(slack)) == before


async def test_a_range_wider_than_the_data_is_clipped_and_says_so(slack: SlackEnv) -> None:
    spec = slack.demo.spec
    msg = await slack.post("U_ALICE", "/backfill plan all --from 2000-01-01 --to 2027-12-31")
    shown = str(msg.blocks)
    assert f"clipped to {spec.start} .. {spec.end}, the days with data" in shown, shown
    assert f"{spec.start} to {spec.end}" in msg.text, msg.text
    msg = await slack.post("U_ALICE", "/purge plan oportun --from 2000-01-01")
    assert "clipped to " in str(msg.blocks), msg.blocks
