"""The Slack stand-in against the real slack_sdk clients and a real Bolt app served over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.contracts import SLACK_FIXTURE, full_slack_contract
from bot.standins.slack.contract import Contract, default_contract_path
from bot.standins.slack.emulator import Change, SlackEmulator

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"


@contextlib.asynccontextmanager
async def serve_bolt(app: AsyncApp) -> AsyncIterator[str]:
    """Serve a Bolt AsyncApp on an ephemeral port; yields its request URL."""
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


def new_emulator(**kwargs: Any) -> SlackEmulator:
    emu = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, **kwargs).start()
    emu.add_user("U_ALICE", "alice", real_name="Alice Example")
    emu.add_user("U_BOB", "bob")
    emu.add_user("U_EVE", "eve")
    emu.add_channel("C_OPS", "ops", members=["U_ALICE", "U_BOB"])
    return emu


@pytest.fixture()
def emu() -> Iterator[SlackEmulator]:
    emulator = new_emulator()
    yield emulator
    emulator.close()


@pytest.fixture()
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


def build_app(emu: SlackEmulator, seen: list[dict[str, Any]]) -> AsyncApp:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=emu.api_url), signing_secret=SECRET)

    @app.command("/hello")
    async def hello(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, say: AsyncSay) -> None:
        seen.append(command)
        if command["text"] == "bad":
            await ack(text=":x: bad input", response_type="ephemeral")
            return
        await ack()
        await respond(text=f"only for you, {command['user_name']}")
        await say(text="Pick one", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Pick* one"}},
            {"type": "actions", "block_id": "pick", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Run"}, "action_id": "run", "value": "r1"},
                {"type": "button", "text": {"type": "plain_text", "text": "Dismiss"}, "action_id": "dismiss",
                 "value": "d1", "style": "danger"}]}])

    @app.command("/modal")
    async def modal(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(command)
        with contextlib.suppress(SlackApiError):  # an expired trigger: the call is in emu.calls
            await client.views_open(trigger_id=command["trigger_id"], view={
                "type": "modal", "callback_id": "edit", "private_metadata": "job-1",
                "title": {"type": "plain_text", "text": "Edit"}, "submit": {"type": "plain_text", "text": "Save"},
                "blocks": [{"type": "input", "block_id": "body", "label": {"type": "plain_text", "text": "Body"},
                            "element": {"type": "plain_text_input", "action_id": "text"}}]})

    @app.action("run")
    async def run(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await respond(text="running", replace_original=True)

    @app.action("dismiss")
    async def dismiss(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await respond(delete_original=True)

    @app.action("confirm")
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await respond(text="confirmed", replace_original=True)

    @app.view("edit")
    async def edit(ack: AsyncAck, view: dict[str, Any]) -> None:
        seen.append(view)
        await ack()

    return app


@pytest_asyncio.fixture(loop_scope="session")
async def bolt(emu: SlackEmulator) -> AsyncIterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    async with serve_bolt(build_app(emu, seen)) as url:
        emu.app_url = url
        yield seen


async def test_post_thread_update_ephemeral_permalink(emu: SlackEmulator, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C_OPS", text="status", blocks=[
        {"type": "header", "text": {"type": "plain_text", "text": "Backfill b-123456"}}])
    assert root["message"]["bot_id"] == "B0SHEPHERD" and root["message"]["blocks"][0]["block_id"]
    reply = await client.chat_postMessage(channel="C_OPS", text="milestone", thread_ts=root["ts"])
    await client.chat_update(channel="C_OPS", ts=root["ts"], text="status 50%")
    eph = await client.chat_postEphemeral(channel="C_OPS", user="U_ALICE", text="psst")
    link = await client.chat_getPermalink(channel="C_OPS", message_ts=reply["ts"])

    assert float(root["ts"]) < float(reply["ts"]) < float(eph["message_ts"])
    [top] = emu.messages("C_OPS")
    assert (top.text, top.edits, top.reply_count) == ("status 50%", 1, 1)
    assert top.blocks[0]["type"] == "header"  # chat.update without blocks keeps them, as Slack does
    assert [m.text for m in emu.thread("#ops", root["ts"])] == ["milestone"]
    assert [m.text for m in emu.ephemerals("alice")] == ["psst"] and emu.ephemerals("U_BOB") == []
    assert link["permalink"].endswith(f"?thread_ts={root['ts']}&cid=C_OPS")
    assert (await client.users_info(user="U_ALICE"))["user"]["real_name"] == "Alice Example"
    assert (await client.conversations_info(channel="C_OPS"))["channel"]["name"] == "ops"
    await client.chat_delete(channel="C_OPS", ts=reply["ts"])
    assert emu.thread("C_OPS", root["ts"]) == [] and emu.message("C_OPS", root["ts"]).reply_count == 0
    assert emu.contract_violations == [] and all(c.ok for c in emu.calls)


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_sync_client_form_bodies_and_slack_errors(emu: SlackEmulator) -> None:
    web_client = WebClient(token=TOKEN, base_url=emu.api_url)
    posted = web_client.chat_postMessage(channel="C_OPS", text="x", blocks=json.dumps([{"type": "divider"}]))
    assert emu.message("C_OPS", posted["ts"]).blocks[0]["type"] == "divider"
    expected = {
        "channel_not_found": lambda: web_client.chat_postMessage(channel="C_NOPE", text="x"),
        "message_not_found": lambda: web_client.chat_update(channel="C_OPS", ts="1.000001", text="x"),
        "no_text": lambda: web_client.chat_postMessage(channel="C_OPS"),
        "msg_too_long": lambda: web_client.chat_postMessage(channel="C_OPS", text="x" * 40_001),
        "invalid_blocks": lambda: web_client.chat_postMessage(channel="C_OPS", text="x",
                                                              blocks=[{"type": "divider"}] * 51),
        "user_not_found": lambda: web_client.users_info(user="U_NOBODY"),
        "user_not_in_channel": lambda: web_client.chat_postEphemeral(channel="C_OPS", user="U_EVE", text="x"),
        "thread_not_found": lambda: web_client.chat_postMessage(channel="C_OPS", text="x", thread_ts="1.000001"),
    }
    for error, call in expected.items():
        with pytest.raises(SlackApiError) as raised:
            call()
        assert raised.value.response["error"] == error
    with pytest.raises(SlackApiError) as raised:
        web_client.chat_postMessage(channel="C_OPS", text="x", blocks=[{"type": "section", "text": {
            "type": "mrkdwn", "text": "y" * 3001}}])
    assert "json-pointer:/blocks/0" in raised.value.response["response_metadata"]["messages"][0]
    assert emu.contract_violations == []


async def test_contract_violations_are_listed_and_refused(emu: SlackEmulator, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.api_call("chat.postMessage", json={"text": "no channel"})
    assert raised.value.response["error"] == "invalid_arguments"
    assert raised.value.response["response_metadata"]["messages"] == ["[ERROR] missing required field: channel"]
    await client.api_call("chat.postMessage", json={"channel": "C_OPS", "text": "x", "metadata": {"a": 1}})
    with pytest.raises(SlackApiError):
        await client.api_call("chat.postMessage", json={"channel": "C_OPS", "text": "x", "unfurl_links": "maybe"})
    assert emu.contract_violations == [
        "chat.postMessage: [ERROR] missing required field: channel",
        "chat.postMessage: [ERROR] expected boolean for field unfurl_links, got 'maybe'"]
    assert emu.contract_unknown == ["chat.postMessage: metadata"]


def test_lenient_mode_records_but_answers() -> None:
    with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, strict=False) as emu:
        emu.add_channel("C_OPS", "ops")
        WebClient(token=TOKEN, base_url=emu.api_url).api_call("chat.postMessage", json={
            "channel": "C_OPS", "text": "x", "unfurl_links": "maybe"})
        assert len(emu.messages("C_OPS")) == 1 and len(emu.contract_violations) == 1


async def test_tokens_are_checked(emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test()
    assert raised.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(base_url=emu.api_url).auth_test()
    assert raised.value.response["error"] == "not_authed"
    answer = WebClient(base_url=emu.api_url).api_call("auth.test", params={"token": TOKEN})
    assert answer["user_id"] == emu.bot_user_id


async def test_rate_limit_retry_after_is_honoured(emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    emu.inject("chat.postMessage", status=429, retry_after=1)
    began = time.monotonic()
    await client.chat_postMessage(channel="C_OPS", text="after a pause")
    assert time.monotonic() - began >= 1.0
    assert [(c.method, c.http_status, c.error) for c in emu.calls] == [
        ("chat.postMessage", 429, "ratelimited"), ("chat.postMessage", 200, None)]
    assert len(emu.messages("C_OPS")) == 1


async def test_server_errors_and_seeded_fault_rate(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.inject(None, status=503)
    with pytest.raises(SlackApiError) as raised:
        await client.auth_test()
    assert raised.value.response.status_code == 503
    retrying = AsyncWebClient(token=TOKEN, base_url=emu.api_url,
                              retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)])
    emu.inject("auth.test", status=500)
    assert (await retrying.auth_test())["ok"]

    def pattern(seed: int) -> list[int]:
        with SlackEmulator(signing_secret=SECRET, bot_token=TOKEN) as other:
            other.fault_rate(0.5, seed=seed)
            sync = WebClient(token=TOKEN, base_url=other.api_url)
            for _ in range(12):
                with contextlib.suppress(SlackApiError):
                    sync.auth_test()
            return [c.http_status for c in other.calls]

    first = pattern(7)
    assert first == pattern(7) and {429, 500, 200} <= set(first)


async def test_slash_command_reaches_bolt_and_replies_land(emu: SlackEmulator, bolt: list[dict[str, Any]]) -> None:
    changes: list[Change] = []
    unsubscribe = emu.subscribe(changes.append)
    ack = await emu.slash("alice", "#ops", "/hello", "world")
    assert ack.status == 200 and ack.elapsed_s < 3
    command = bolt[0]
    assert (command["user_id"], command["channel_name"], command["text"]) == ("U_ALICE", "ops", "world")
    assert command["response_url"].startswith(emu.api_url.removesuffix("api/"))
    posted = await emu.wait_for(lambda: emu.messages("C_OPS"))
    assert [b[1:4] for b in posted[0].buttons()] == [("Run", "run", "r1"), ("Dismiss", "dismiss", "d1")]
    assert [m.text for m in emu.ephemerals("U_ALICE")] == ["only for you, alice"]
    assert emu.responses()[0]["text"] == "only for you, alice"
    # Subscribers hear of a change just after it is made, on the thread that made it: wait, don't race.
    assert await emu.wait_for(lambda: {c.kind for c in changes} == {"new", "ephemeral"})
    unsubscribe()

    bad = await emu.slash("U_ALICE", "C_OPS", "hello", "bad")
    assert json.loads(bad.body)["text"] == ":x: bad input"
    assert emu.ephemerals("U_ALICE")[-1].text == ":x: bad input"  # Slack shows the ack's text to the user
    assert len(changes) == 2 and emu.contract_violations == []


async def test_button_clicks_have_slacks_shape_and_respond_edits(emu: SlackEmulator,
                                                                 bolt: list[dict[str, Any]]) -> None:
    await emu.slash("U_ALICE", "C_OPS", "/hello", "")
    msg = (await emu.wait_for(lambda: emu.messages("C_OPS")))[0]
    ack = await emu.click("U_BOB", "C_OPS", msg.ts, label="Run")
    assert ack.status == 200
    body = bolt[-1]
    assert body["type"] == "block_actions" and body["user"]["username"] == "bob"
    assert body["container"] == {"type": "message", "message_ts": msg.ts, "channel_id": "C_OPS",
                                 "is_ephemeral": False}
    assert body["message"]["ts"] == msg.ts and body["message"]["blocks"] == msg.blocks
    assert body["channel"] == {"id": "C_OPS", "name": "ops"} and body["trigger_id"]
    action = body["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == ("run", "pick", "r1",
                                                                                           "button")
    assert action["text"] == {"type": "plain_text", "text": "Run", "emoji": True}
    edited = await emu.wait_for(lambda: [m for m in [emu.message("C_OPS", msg.ts)] if m.edits])
    assert edited[0].text == "running" and edited[0].blocks == []

    confirm = await AsyncWebClient(token=TOKEN, base_url=emu.api_url).chat_postEphemeral(
        channel="C_OPS", user="U_BOB", text="sure?", blocks=[{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "action_id": "confirm"}]}])
    with pytest.raises(LookupError):
        await emu.click("U_ALICE", "C_OPS", confirm["message_ts"], index=1)  # not shown to alice
    await emu.click("U_BOB", "C_OPS", confirm["message_ts"], index=1)
    body = bolt[-1]
    assert body["container"]["is_ephemeral"] is True and "message" not in body
    assert (await emu.wait_for(lambda: emu.ephemerals("U_BOB")[-1].text == "confirmed"))

    await emu.slash("U_ALICE", "C_OPS", "/hello", "")
    second = (await emu.wait_for(lambda: emu.messages("C_OPS")[1:]))[0]
    await emu.click("U_BOB", "C_OPS", second.ts, action_id="dismiss")
    await emu.wait_for(lambda: len(emu.messages("C_OPS")) == 1)  # delete_original
    with pytest.raises(LookupError):
        await emu.click("U_BOB", "C_OPS", msg.ts, label="Run")  # the edit removed the buttons
    assert emu.contract_violations == []


async def test_modal_opens_with_the_trigger_and_submits(emu: SlackEmulator, bolt: list[dict[str, Any]]) -> None:
    await emu.slash("U_ALICE", "C_OPS", "/modal", "")
    [view] = await emu.wait_for(lambda: emu.open_views("U_ALICE"))
    assert view.view["callback_id"] == "edit"
    ack = await emu.submit_view("U_ALICE", view.id, {"body": {"text": "hello there"}})
    assert ack.status == 200
    submitted = bolt[-1]
    assert submitted["state"]["values"] == {"body": {"text": {"type": "plain_text_input", "value": "hello there"}}}
    assert submitted["private_metadata"] == "job-1" and emu.open_views("U_ALICE") == []
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id=bolt[0]["trigger_id"], view=view.view)
    assert raised.value.response["error"] == "exchanged_trigger_id"  # trigger ids act once


async def test_trigger_ids_expire() -> None:
    emu = new_emulator(trigger_ttl_s=0.0)
    try:
        async with serve_bolt(build_app(emu, [])) as url:
            emu.app_url = url
            await emu.slash("U_ALICE", "C_OPS", "/modal", "")
            await emu.wait_for(lambda: [c for c in emu.calls if c.method == "views.open"])
        assert [c.error for c in emu.calls if c.method == "views.open"] == ["expired_trigger_id"]
    finally:
        emu.close()


async def test_forged_stale_and_unsigned_requests_get_401(emu: SlackEmulator, bolt: list[dict[str, Any]]) -> None:
    body = urlencode({"command": "/hello", "text": "x", "user_id": "U_ALICE", "user_name": "alice",
                      "channel_id": "C_OPS", "team_id": "T0SHEPHERD", "response_url": "http://127.0.0.1:9/x",
                      "trigger_id": "t"}).encode()
    now = str(int(time.time()))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = str(SignatureVerifier("wrong").generate_signature(timestamp=now, body=body))
    stale_ts = str(int(time.time()) - 3600)
    stale = str(SignatureVerifier(SECRET).generate_signature(timestamp=stale_ts, body=body))
    for headers in ({"X-Slack-Request-Timestamp": now, "X-Slack-Signature": forged},
                    {"X-Slack-Request-Timestamp": stale_ts, "X-Slack-Signature": stale}, {}):
        assert (await emu.deliver_raw(body, {**form, **headers})).status == 401
    assert bolt == []


async def test_files_upload_v2_lands_in_the_thread(emu: SlackEmulator, client: AsyncWebClient,
                                                   tmp_path: Path) -> None:
    root = await client.chat_postMessage(channel="C_OPS", text="plan")
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG fake chart")
    done = await client.files_upload_v2(channel="C_OPS", thread_ts=root["ts"], file=str(chart),
                                        filename=chart.name, title="Throughput")
    [reply] = emu.thread("C_OPS", root["ts"])
    assert [(f["name"], f["title"]) for f in reply.files] == [("chart.png", "Throughput")]
    assert emu.file_bytes(done["file"]["id"]) == b"\x89PNG fake chart"
    assert emu.contract_violations == []


async def test_response_url_limits_and_wait_for_timeout(emu: SlackEmulator, bolt: list[dict[str, Any]]) -> None:
    await emu.slash("U_ALICE", "C_OPS", "/hello", "x")
    url = bolt[0]["response_url"]
    async with aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(5):
            async with session.post(url, json={"text": "again"}) as answer:
                statuses.append((answer.status, await answer.text()))
    assert statuses[-1] == (404, "used_url") and statuses[0] == (200, "ok")
    with pytest.raises(TimeoutError):
        await emu.wait_for(lambda: emu.messages("C_NONE"), timeout=0.1)


def test_the_published_contract_is_the_one_checked() -> None:
    path = default_contract_path()  # the full spec where this machine has it, else the project's trimmed copy
    assert path == (full_slack_contract() or SLACK_FIXTURE)
    assert SlackEmulator(signing_secret=SECRET).contract_source == path
    spec = Contract.load(path)
    for method in ("chat.postMessage", "chat.update", "views.open", "usergroups.users.list"):
        assert spec.has(method)
    assert not spec.has("files.getUploadURLExternal")  # 2024 method, newer than the 2021 spec
    assert spec.check("chat.postMessage", {"text": "x"})[0] == ["[ERROR] missing required field: channel"]


def test_start_close_and_threads() -> None:
    emu = new_emulator()
    try:
        # usable from plain sync code and from a second event loop at once
        WebClient(token=TOKEN, base_url=emu.api_url).chat_postMessage(channel="C_OPS", text="sync")
        asyncio.run(AsyncWebClient(token=TOKEN, base_url=emu.api_url).chat_postMessage(channel="C_OPS", text="a"))
        assert [m.text for m in emu.messages("C_OPS")] == ["sync", "a"]
    finally:
        emu.close()
    with pytest.raises(RuntimeError):
        SlackEmulator(signing_secret=SECRET).api_url  # noqa: B018
