"""`register(app, deps)`: Shepherd's slash commands and buttons on a Bolt AsyncApp.

Each listener acks at once (parse errors go back in the ack itself, the fastest ephemeral reply
Slack has) and does its work after, so Slack always has its answer within 3 seconds.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.deps import SlackDeps, Who
from bot.slack.router import Router
from commands.grammar import ROOTS, ParseError, parse

BUTTONS = re.compile(r"^(backfill|plan|purge|job)\.[a-z_]+$")


def register(app: AsyncApp, deps: SlackDeps) -> Router:
    router = Router(deps)

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        who = Who(command["user_id"], command["channel_id"], command.get("channel_name"), respond)
        text = command.get("text", "")
        try:
            parsed = parse(command["command"], text)
        except ParseError as err:
            await ack(text=f":x: {err.message}\nUsage: `{err.usage}`", response_type="ephemeral")
            await asyncio.to_thread(deps.audit.record, who.user, command["command"], outcome=f"refused: {err.message}",
                                    text=text, channel=who.channel)
            return
        await ack()
        await router.command(parsed, f"{command['command']} {text}", who)

    async def on_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        channel = body.get("channel") or {}
        who = Who(body["user"]["id"], channel.get("id", ""), channel.get("name"), respond)
        await router.button(action["action_id"], action.get("value", ""), who)

    for name in ROOTS:
        app.command(f"/{name}")(on_command)
    app.action(BUTTONS)(on_button)
    return router
