"""The console over the Slack stand-in, driving a small Bolt app served over HTTP."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import create_output
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.web.async_client import AsyncWebClient

from bot.standins.console.console import Console
from bot.standins.slack.emulator import SlackEmulator
from tests.integration.test_slack_emulator import SECRET, TOKEN, new_emulator, serve_bolt


def button(text: str, action_id: str, value: str = "", style: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id,
                             "value": value}
    return {**shown, "style": style} if style else shown


def deploy_app(emu: SlackEmulator) -> AsyncApp:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=emu.api_url), signing_secret=SECRET)

    @app.command("/deploy")
    async def deploy(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, say: AsyncSay) -> None:
        service = command["text"].strip()
        if not service:
            await ack(text=":x: say which service\nUsage: `/deploy <service>`", response_type="ephemeral")
            return
        await ack()
        if service == "forbidden":
            await respond(text=":x: only operators may deploy", response_type="ephemeral")
            return
        requester = command["user_id"]
        await say(text=f"Deploy {service}?", blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": f"Deploy {service}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*Service*\n{service}"},
                                           {"type": "mrkdwn", "text": f"*Requested by*\n<@{requester}>"}]},
            {"type": "actions", "elements": [button("Approve", "deploy.approve", service, "primary"),
                                             button("Cancel", "deploy.cancel", service)]}])

    @app.action("deploy.approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()
        service, who = body["actions"][0]["value"], body["user"]["id"]
        await respond(replace_original=True, text=f"Deploy {service} approved by <@{who}>", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Deploy {service}* approved by <@{who}>"}}])
        ts, channel = body["container"]["message_ts"], body["channel"]["id"]
        await asyncio.sleep(0.1)
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=f"Rolling out {service}", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Rolling out {service}: rolled out"}},
            {"type": "actions", "elements": [button("Rollback", "deploy.rollback", service, "danger")]}])

    @app.action("deploy.rollback")
    async def rollback(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_postMessage(channel=body["channel"]["id"], thread_ts=body["container"]["thread_ts"],
                                      text=f"{body['actions'][0]['value']} rolled back")

    @app.action("deploy.cancel")
    async def cancel(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await respond(text="Really cancel?", blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "Really cancel?"}},
            {"type": "actions", "elements": [button("Yes, cancel", "deploy.cancel_yes"), button("No", "deploy.no")]}])

    @app.action("deploy.cancel_yes")
    async def cancel_yes(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(replace_original=True, text="Cancelled.")

    return app


@pytest.fixture()
def emu() -> Iterator[SlackEmulator]:
    emulator = new_emulator()
    yield emulator
    emulator.close()


@pytest_asyncio.fixture(loop_scope="session")
async def console(emu: SlackEmulator) -> AsyncIterator[Console]:
    async with serve_bolt(deploy_app(emu)) as url:
        emu.app_url = url
        shown = Console(emu, default_user="alice", default_channel="#ops", output=io.StringIO(),
                        wait_timeout=5, reply_wait_s=2, settle_s=0.15)
        yield shown
        shown.close()


def transcript_of(console: Console) -> str:
    assert isinstance(console.screen.output, io.StringIO)
    return console.screen.output.getvalue()


SCRIPT = """\
# alice asks, bob approves, the thread shows the roll-out
/deploy api
expect Deploy api
expect [1 Approve] [2 Cancel]
/as bob
click 1
expect approved by @bob
wait until rolled out
open last
expect Rolling out api: rolled out
click 1
wait until api rolled back
back
messages 5
expect ↳ 2 replies
"""


async def test_a_script_plays_a_whole_flow(console: Console, emu: SlackEmulator, tmp_path: Path) -> None:
    script = tmp_path / "deploy.txt"
    script.write_text(SCRIPT)
    assert await console.run_script(script) == 0, transcript_of(console)
    transcript = transcript_of(console)
    assert "> /deploy api\n" in transcript and "> # alice asks" in transcript
    assert "\nService  Requested by\napi      @alice\n" in transcript  # fields in two columns
    [root] = emu.messages("C_OPS")
    assert root.text == "Deploy api approved by <@U_BOB>"
    assert [m.text for m in emu.thread("C_OPS", root.ts)] == ["Rolling out api", "api rolled back"]
    assert emu.contract_violations == []


async def test_a_script_stops_at_the_first_failing_line(console: Console, tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text("/deploy api\n\n/deploy\nexpect never reached\n")
    assert await console.run_script(script) == 1
    transcript = transcript_of(console)
    assert ":x: say which service" in transcript
    assert transcript.rstrip().endswith("bad.txt:3: failed: /deploy")
    assert "never reached" not in transcript


async def test_lines_one_by_one(console: Console, emu: SlackEmulator) -> None:
    refused = await console.run_line("/deploy forbidden")  # the error comes by response_url, after the ack
    assert not refused.ok and ":x: only operators may deploy" in refused.output
    asked = await console.run_line("/deploy web")
    assert asked.ok and "Deploy web" in asked.output and "(only visible to you)" not in asked.output
    confirm = await console.run_line("click 2")
    assert confirm.ok and "Really cancel?" in confirm.output and "[1 Yes, cancel] [2 No]" in confirm.output
    done = await console.run_line("click 1")  # the latest message with buttons is alice's ephemeral
    assert done.ok and "Cancelled." in done.output
    assert [m.text for m in emu.ephemerals("U_ALICE")] == [":x: only operators may deploy", "Cancelled."]
    assert not (await console.run_line("expect nothing like this")).ok
    assert (await console.run_line("expect Cancelled.")).ok
    root = emu.messages("C_OPS")[-1]
    assert (await console.run_line(f"click 1 in {root.ts}")).ok
    assert (await console.run_line("wait until approved by @alice")).ok
    assert not (await console.run_line("/as nobody")).ok
    assert not (await console.run_line("/in #nowhere")).ok
    assert not (await console.run_line("click 9")).ok
    assert not (await console.run_line("frobnicate")).ok
    assert (await console.run_line("# a comment")).ok and (await console.run_line("")).output == ""
    assert "click N in <ts>" in (await console.run_line("help")).output
    console.wait_timeout = 0.2
    assert not (await console.run_line("wait until something that never comes")).ok
    waited = await console.run_line("wait 0.1")
    assert waited.ok


async def test_interactive_prompt_prints_posts_as_they_arrive(console: Console, emu: SlackEmulator) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    terminal = io.StringIO()  # not a tty: prompt_toolkit writes plain text to it
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=create_output(stdout=terminal)):
        task = asyncio.create_task(console.run_interactive())
        await asyncio.sleep(0.2)
        await client.chat_postMessage(channel="C_OPS", text="a post from elsewhere")
        pipe.send_text("help\n")
        await asyncio.sleep(0.3)
        pipe.send_text("\x04")  # Ctrl-D
        await asyncio.wait_for(task, 5)
    out = terminal.getvalue()
    assert "a post from elsewhere" in out and "click N in <ts>" in out and "Ctrl-D leaves" in out
