"""`register(app, deps)`: Shepherd's slash commands and buttons on a Bolt AsyncApp.

Each listener acks at once (parse errors go back in the ack itself, the fastest ephemeral reply
Slack has) and hands the work to a background task, so Slack always has its answer within 3
seconds. The app runs with `process_before_response=True`: Bolt then answers as soon as the
listener returns instead of polling for the ack every 10 ms, which under load cost more than the
work itself. `Background.drain()` lets a stopping server finish what it accepted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.backfill_modal import CALLBACK as PLAN_CALLBACK
from bot.slack.backfill_modal import read_plan
from bot.slack.deps import SlackDeps, Who
from bot.slack.linear_flow import ticket_errors
from bot.slack.outbox import Outbox
from bot.slack.replay import ReplayGuard
from bot.slack.router import Router
from commands.grammar import ROOTS, ParseError, parse

log = logging.getLogger(__name__)
BUTTONS = re.compile(r"^(backfill|plan|purge|job|linear|home|verify)\.[a-z_]+$")


class ResponseUrls:
    """Replies through Slack's response_url on one kept-alive HTTP session.

    Bolt's respond() opens a new session and connection per reply; under load that was a quarter of
    the server's time. When Slack does not take a private reply (5xx, 429, unreachable), it goes to the
    outbox as chat.postEphemeral to the same person in the same channel, and the poster delivers it
    once Slack answers again (a reply that replaces a message cannot be sent that way: it is logged).
    """

    def __init__(self, outbox: Outbox | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.outbox = outbox

    def to(self, url: str | None, fallback: AsyncRespond, user: str = "", channel: str = "") -> Callable[
            ..., Awaitable[Any]]:
        if not url:
            return fallback

        async def respond(**payload: Any) -> None:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            body = {k: v for k, v in payload.items() if v is not None}
            try:
                async with self._session.post(url, json=body) as answer:
                    if answer.status < 400:
                        return
                    why = f"HTTP {answer.status}: {(await answer.text())[:200]}"
                    if answer.status < 500 and answer.status != 429:
                        log.warning("response_url answered %s", why)
                        return
            except (aiohttp.ClientError, TimeoutError) as err:
                why = f"unreachable: {type(err).__name__}"
            await self._queue(body, user, channel, why)

        return respond

    async def _queue(self, body: dict[str, Any], user: str, channel: str, why: str) -> None:
        if self.outbox is None or not user or not channel or body.get("replace_original") \
                or body.get("delete_original") or body.get("response_type") == "in_channel":
            log.warning("response_url %s; the reply is dropped", why)
            return
        args = {k: v for k, v in body.items() if k in ("text", "blocks")}
        await asyncio.to_thread(self.outbox.enqueue, f"reply:{uuid.uuid4().hex}", "chat.postEphemeral",
                                {**args, "user": user}, channel=channel)
        log.warning("response_url %s; the reply waits in the outbox", why)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Background:
    """Tasks started after an ack; kept referenced until done (asyncio holds only weak references)."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.replies = ResponseUrls(outbox)
        self.home: Any = None  # the Home tabs (bot/slack/home.py), set by register()

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        if self.home is not None:
            await asyncio.wait_for(self.home.idle(), timeout)
        await self.replies.close()


def register(app: AsyncApp, deps: SlackDeps) -> Background:
    """Listeners, behind the replay guard (a signed request delivered again is acked, not run again)."""
    app.use(ReplayGuard(deps.records.pool))
    outbox = Outbox(deps.records.pool)
    router = Router(deps, outbox)
    background = Background(outbox)

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        who = Who(command["user_id"], command["channel_id"], command.get("channel_name"),
                  background.replies.to(command.get("response_url"), respond, command["user_id"],
                                        command["channel_id"]))
        text = command.get("text", "")
        try:
            parsed = parse(command["command"], text)
        except ParseError as err:
            await ack(text=f":x: {err.message}\nUsage: `{err.usage}`", response_type="ephemeral")
            background.start(asyncio.to_thread(deps.audit.record, who.user, command["command"],
                                               outcome=f"refused: {err.message}", text=text, channel=who.channel))
            return
        await ack()
        background.start(router.command(parsed, f"{command['command']} {text}", who))

    async def on_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        channel = body.get("channel") or {}
        if (body.get("container") or {}).get("type") == "view":  # the Home tab: no channel, no response_url
            who = router.home.who(body["user"]["id"])
        else:
            who = Who(body["user"]["id"], channel.get("id", ""), channel.get("name"),
                      background.replies.to(body.get("response_url"), respond, body["user"]["id"],
                                            channel.get("id", "")))
        background.start(router.button(action["action_id"], action.get("value", ""), who,
                                       body.get("trigger_id", "")))

    async def on_view(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors = ticket_errors(view) if view.get("callback_id") == "linear.ticket" else None
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        background.start(router.view(str(view.get("callback_id")), view, body))

    async def on_plan_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = read_plan(deps, view, deps.now().astimezone(deps.tz).date())
        if isinstance(form, dict):
            await ack(response_action="errors", errors=form)
            return
        await ack()
        background.start(router.plan_form(form, body["user"]["id"]))

    async def on_home_opened(ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") == "home" and deps.config.slack.home_tab:
            router.home.tabs.opened(str(event["user"]))

    for name in ROOTS:
        app.command(f"/{name}")(on_command)
    app.action(BUTTONS)(on_button)
    app.view(re.compile(r"^linear\.(edit|ticket)$"))(on_view)
    app.view(PLAN_CALLBACK)(on_plan_form)
    app.event("app_home_opened")(on_home_opened)
    deps.changed = router.home.tabs.refresh
    background.home = router.home.tabs
    return background
