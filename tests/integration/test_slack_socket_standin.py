"""The stand-in's Socket Mode and new Web API methods, spoken to as slack_sdk and a bare WebSocket speak them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.slack.emulator import SlackEmulator

TOKEN, APP_TOKEN = "xoxb-sm-test", "xapp-sm-test"


@pytest.fixture()
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(signing_secret="s", bot_token=TOKEN, app_token=APP_TOKEN, socket_mode=True,
                             ack_timeout_s=0.3).start()
    emulator.add_user("U_ALICE", "alice")
    emulator.add_user("U_BOT2", "otherbot", is_bot=True)
    emulator.add_channel("C_OPS", "ops")
    emulator.socket.max_retries = 2
    yield emulator
    emulator.close()


async def test_connections_open_takes_the_app_token_only_and_urls_connect_once(emu: SlackEmulator) -> None:
    app = AsyncWebClient(base_url=emu.api_url)
    url = (await app.apps_connections_open(app_token=APP_TOKEN))["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    with pytest.raises(SlackApiError) as refused:
        await app.apps_connections_open(app_token=TOKEN)
    assert refused.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token=APP_TOKEN, base_url=emu.api_url).chat_postMessage(channel="C_OPS", text="x")
    assert wrong.value.response["error"] == "not_allowed_token_type"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            hello = json.loads((await ws.receive()).data)
            assert hello["type"] == "hello" and hello["num_connections"] == 1
            assert hello["connection_info"]["app_id"] == "A0SHEPHERD" and "debug_info" in hello
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)  # a used URL


async def test_unacknowledged_envelopes_are_redelivered_then_given_up(emu: SlackEmulator) -> None:
    url = (await AsyncWebClient(base_url=emu.api_url).apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.receive()  # hello
        unanswered = asyncio.create_task(emu.slash("U_ALICE", "C_OPS", "/shepherd", "help"))
        frames = [json.loads((await ws.receive()).data) for _ in range(3)]
        delivery = await unanswered
        assert delivery.status == 504 and delivery.attempts == 3
        assert [f.get("retry_attempt") for f in frames] == [None, 1, 2]
        assert {f["envelope_id"] for f in frames} == {frames[0]["envelope_id"]}
        assert frames[1]["retry_reason"] == "timeout" and frames[0]["accepts_response_payload"] is True

        # Acknowledged on the second attempt, with a payload: that is the answer; a late ack changes nothing.
        answered = asyncio.create_task(emu.slash("U_ALICE", "C_OPS", "/shepherd", "help"))
        first = json.loads((await ws.receive()).data)
        second = json.loads((await ws.receive()).data)
        await ws.send_str(json.dumps({"envelope_id": second["envelope_id"], "payload": {"text": "hi"}}))
        await ws.send_str(json.dumps({"envelope_id": first["envelope_id"]}))
        delivery = await answered
        assert delivery.status == 200 and json.loads(delivery.body) == {"text": "hi"} and delivery.attempts == 2
        assert emu.ephemerals("U_ALICE")[-1].text == "hi"


async def test_direct_messages_and_home_views(emu: SlackEmulator) -> None:
    web = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    dm = (await web.conversations_open(users="U_ALICE"))["channel"]["id"]
    assert dm.startswith("D")
    await web.chat_postMessage(channel=dm, text="hello")
    assert [m.text for m in emu.dm("U_ALICE")] == ["hello"]
    for user, error in (("U_BOT2", "cannot_dm_bot"), ("U_NOBODY", "user_not_found")):
        with pytest.raises(SlackApiError) as refused:
            await web.conversations_open(users=user)
        assert refused.value.response["error"] == error
    emu.restrict_dms("U_ALICE")
    with pytest.raises(SlackApiError) as restricted:
        await web.chat_postMessage(channel=dm, text="again")
    assert restricted.value.response["error"] == "restricted_action"
    emu.deactivate("U_ALICE")
    with pytest.raises(SlackApiError) as gone:
        await web.conversations_open(users="U_ALICE")
    assert gone.value.response["error"] == "user_disabled"

    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    published = (await web.views_publish(user_id="U_ALICE", view=view))["view"]
    assert emu.home("U_ALICE").view["blocks"][0]["text"]["text"] == "hi" and emu.home_publishes("U_ALICE") == 1
    with pytest.raises(SlackApiError) as stale:
        await web.views_publish(user_id="U_ALICE", view=view, hash="not-the-hash")
    assert stale.value.response["error"] == "hash_conflict"
    await web.views_publish(user_id="U_ALICE", view=view, hash=published["hash"])
    with pytest.raises(SlackApiError) as modal:
        await web.views_publish(user_id="U_ALICE", view={**view, "type": "modal", "title": {"type": "plain_text",
                                                                                             "text": "x"}})
    assert modal.value.response["error"] == "invalid_arguments"
    assert emu.home_publishes("U_ALICE") == 2 and emu.contract_violations == []
