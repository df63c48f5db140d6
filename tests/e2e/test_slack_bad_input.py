"""Bad input of every kind: a clear private answer (what is wrong, the usage line) and nothing starts."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import SlackEnv, ack_text

# (user, channel, command text, a phrase the answer must contain)
BAD = [
    ("U_ALICE", "C_OPS", "/backfill plan", "customers"),
    ("U_ALICE", "C_OPS", "/backfill plan nobody-such", "unknown customer"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --window 0d", "window"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --window five", "window"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --from 2026-13-01", "--from"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --from 2026-02-10 --to 2026-02-01", "after"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --parallel 0", "--parallel"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --parallel 500", "--parallel"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --bogus", "--bogus"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --from", "--from"),
    ("U_ALICE", "C_OPS", "/backfill plan 'hilton", "quote"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton,,marriott", "customer"),
    ("U_ALICE", "C_OPS", "/backfill hilton --at someday", "--at"),
    ("U_ALICE", "C_OPS", "/backfill hilton --at 'fri 25:00'", "--at"),
    ("U_ALICE", "C_OPS", "/backfill hilton --dry-run extra", "unexpected"),
    ("U_ALICE", "C_OPS", "/backfill hilton marriott", "unexpected"),
    ("U_DAVE", "C_OPS", "/backfill hilton", "only operators"),
    ("U_ALICE", "C_RANDOM", "/backfill plan hilton", "channel"),
    ("U_ALICE", "C_OPS", "/backfill status nonsense", "job id"),
    ("U_ALICE", "C_OPS", "/backfill status b-000000", "no job"),
    ("U_ALICE", "C_OPS", "/backfill status b-123456 extra", "unexpected"),
    ("U_ALICE", "C_OPS", "/backfill cancel", "job id"),
    ("U_ALICE", "C_OPS", "/backfill cancel b-000000", "no job"),
    ("U_DAVE", "C_OPS", "/backfill cancel b-000000", "only operators"),
    ("U_ALICE", "C_OPS", "/backfill retry", "job id"),
    ("U_ALICE", "C_OPS", "/backfill retry b-000000 --failed-only", "no job"),
    ("U_ALICE", "C_OPS", "/backfill throttle b-000000", "number"),
    ("U_ALICE", "C_OPS", "/backfill throttle b-000000 zero", "whole number"),
    ("U_ALICE", "C_OPS", "/backfill throttle b-000000 0", "at least 1"),
    ("U_ALICE", "C_OPS", "/backfill throttle b-000000 autox", "whole number of windows or auto"),
    ("U_ALICE", "C_OPS", "/backfill hilton --parallel autox", "--parallel 'autox' must be a whole number"),
    ("U_ALICE", "C_OPS", "/backfill hilton --parallel 0", "--parallel 0 must be at least 1"),
    ("U_ALICE", "C_OPS", "/backfill pause B-XYZ", "job id"),
    ("U_ALICE", "C_OPS", "/purge plan", "customers"),
    ("U_ALICE", "C_OPS", "/purge plan hilton --types 9-1", "types"),
    ("U_ALICE", "C_OPS", "/purge plan hilton --types x", "types"),
    ("U_ALICE", "C_OPS", "/purge plan hilton --clusters mars", "unknown cluster"),
    ("U_ALICE", "C_OPS", "/purge plan hilton --max-rows -5", "--max-rows"),
    ("U_ALICE", "C_OPS", "/purge plan ghost-customer", "unknown customer"),
    ("U_DAVE", "C_OPS", "/purge hilton --types 1-3", "only operators"),
    ("U_ALICE", "C_RANDOM", "/purge hilton --types 1-3", "channel"),
    ("U_ALICE", "C_OPS", "/purge hilton --from 2026-01-09 --to 2026-01-03", "after"),
    ("U_ALICE", "C_OPS", "/verify sample:0", "sample"),
    ("U_ALICE", "C_OPS", "/verify sample:abc", "sample"),
    ("U_ALICE", "C_OPS", "/linear draft not-a-ticket", "ticket"),
    ("U_ALICE", "C_OPS", "/linear draft CONVI-1 --jobs x", "job id"),
    ("U_ALICE", "C_OPS", "/linear frobnicate", "linear"),
    ("U_ALICE", "C_OPS", "/shepherd destroy everything", "unknown /shepherd request"),
    ("U_ALICE", "C_OPS", "/backfill plan hilton --window 5d --window 7d", "given twice"),
]


def test_the_list_is_long_enough() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize(("user", "channel", "text", "phrase"), BAD, ids=[b[2] for b in BAD])
async def test_bad_input_answers_privately_and_starts_nothing(slack: SlackEnv, user: str, channel: str, text: str,
                                                             phrase: str) -> None:
    before_jobs, before_msgs = slack.jobs(), len(slack.emu.messages(channel))
    seen = len(slack.replies(user))
    delivery = await slack.say(user, text, channel)
    assert delivery.status == 200
    answer = ack_text(delivery) or await slack.reply_to(user, seen)
    assert answer.startswith(":x:"), answer
    assert phrase.lower() in answer.lower(), answer
    assert "Usage: `/" in answer or "only operators" in answer or "channel" in answer, answer
    await asyncio.sleep(0.05)
    assert slack.jobs() == before_jobs
    assert len(slack.emu.messages(channel)) == before_msgs
