"""Slack calls counted by result: Shepherd's Web API client (with its retry handlers) against the
stand-in answering 429, then 500, then ok: each attempt is counted, and the call still succeeds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.app import slack_web_client
from bot.ops.metrics import ShepherdMetrics
from bot.settings import Settings
from bot.standins.slack.emulator import SlackEmulator
from tests.integration.test_ops_endpoints import sample

pytestmark = pytest.mark.asyncio(loop_scope="session")
TOKEN, SECRET = "xoxb-metrics-token", "metrics-signing-secret"


@pytest.fixture()
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN).start()
    emulator.add_user("U_ALICE", "alice")
    emulator.add_channel("C_OPS", "ops", members={"U_ALICE": "alice"})
    yield emulator
    emulator.close()


async def test_each_attempt_is_counted_by_result(emu: SlackEmulator) -> None:
    metrics = ShepherdMetrics()
    settings = Settings(slack_bot_token=SecretStr(TOKEN), slack_signing_secret=SecretStr(SECRET),
                        slack_api_url=emu.api_url)
    client = slack_web_client(settings, metrics)
    emu.inject("chat.postMessage", status=429, retry_after=1)
    emu.inject("chat.postMessage", status=500)
    answer = await client.chat_postMessage(channel="C_OPS", text="counted")
    assert answer["ok"]
    text = metrics.exposition().decode()
    for result in ("429", "5xx", "ok"):
        assert sample(text, "shepherd_slack_calls_total", method="chat.postMessage", result=result) == 1, text
    assert TOKEN not in text
