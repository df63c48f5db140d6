"""What `/linear` does in Slack: draft a write-up into the thread (buttons Post to Linear and Edit),
edit it in a modal, post it as one Linear comment, and draft the weekly summary.

A draft is kept in Postgres from the moment it is shown: if Linear is down or the ticket is wrong,
the person is told why and the draft stays, to be posted later with the same button.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.adapters.linear import LinearClient
from bot.errors import ConflictError, ShepherdError, UpstreamError, UserInputError
from bot.jobs.records import JobRow
from bot.slack.deps import SlackDeps, Who
from bot.slack.messages import Message, actions, button, context, header, note, section, table_sections
from bot.slack.out import SlackOut
from bot.writeups.service import Draft, WriteupService
from commands import verbs as v
from commands.grammar import TICKET

log = logging.getLogger(__name__)

EDIT_CALLBACK = "linear.edit"
TICKET_CALLBACK = "linear.ticket"
INPUT_MAX = 3000  # Slack's limit for one plain_text_input; a longer draft is edited in several parts
MAX_PARTS = 20
PROGRESS_TIMEOUT_S = 10.0


def split_parts(text: str, size: int = INPUT_MAX) -> list[str]:
    """Text in parts of at most `size` characters, cut between lines; joined with newlines it is whole again."""
    parts: list[str] = []
    current: list[str] = []
    length = 0
    for line in text.split("\n"):
        while len(line) > size:  # a single overlong line: cut it (the join adds a newline there)
            if current:
                parts.append("\n".join(current))
                current, length = [], 0
            parts.append(line[:size])
            line = line[size:]
        if current and length + 1 + len(line) > size:
            parts.append("\n".join(current))
            current, length = [], 0
        length += len(line) + (1 if current else 0)
        current.append(line)
    parts.append("\n".join(current))
    return parts


def draft_message(d: Draft, *, note_line: str | None = None) -> Message:
    title = f"Linear write-up for {d.ticket}" if d.kind == "ticket" else "Weekly summary draft"
    posted = d.comment_url is not None
    blocks: list[Block] = [header(title + (" (posted)" if posted else " (draft)"))]
    blocks += table_sections(d.markdown.split("\n"), "_the draft is longer than Slack shows here: Edit shows it all_")
    jobs = ", ".join(d.job_ids[:12]) + (f" and {len(d.job_ids) - 12} more" if len(d.job_ids) > 12 else "")
    blocks.append(context(f"draft {d.id} · jobs {jobs or 'none'}" + (f" · by <@{d.requester}>" if d.requester else "")))
    if posted:
        blocks.append(section(f":white_check_mark: Posted to <{d.comment_url}|{d.ticket}>."))
    elif d.kind == "ticket":
        blocks.append(actions(button("Post to Linear", "linear.post", d.id, "primary"),
                              button("Edit", "linear.edit", d.id)))
    else:
        blocks.append(actions(button("Edit", "linear.edit", d.id)))
        blocks.append(context("Edit it, then copy it where your team keeps its weekly summaries."))
    if note_line:
        blocks.append(context(note_line))
    return Message(f"{title}: draft {d.id}", blocks)


def edit_view(d: Draft) -> dict[str, Any]:
    parts = split_parts(d.markdown)
    if len(parts) > MAX_PARTS:
        raise UserInputError(f"draft {d.id} is too long to edit in Slack ({len(d.markdown):,} characters)")
    blocks = [
        InputBlock(block_id=f"part{i}", label=("Write-up (Markdown)" if len(parts) == 1
                                               else f"Write-up, part {i + 1} of {len(parts)}"),
                   element=PlainTextInputElement(action_id="text", multiline=True, initial_value=p,
                                                 max_length=INPUT_MAX), optional=len(parts) > 1)
        for i, p in enumerate(parts)
    ]
    title = f"Edit {d.ticket}" if d.kind == "ticket" else "Edit weekly summary"
    view = View(type="modal", callback_id=EDIT_CALLBACK, title=title[:24], submit="Save", close="Cancel",
                private_metadata=d.id, blocks=blocks)
    return view.to_dict()


def ticket_view(job_id: str, channel: str) -> dict[str, Any]:
    """The modal behind a finished job's "Draft Linear write-up" button: which ticket?"""
    field = InputBlock(block_id="ticket", label="Linear ticket (like CONVI-6259)",
                       element=PlainTextInputElement(action_id="text", max_length=20))
    return View(type="modal", callback_id=TICKET_CALLBACK, title="Draft Linear write-up", submit="Draft",
                close="Cancel", private_metadata=f"{job_id}|{channel}", blocks=[field]).to_dict()


def ticket_errors(view: dict[str, Any]) -> dict[str, str] | None:
    """For the view_submission ack (`response_action: errors`): None when the ticket is well formed."""
    ticket = _ticket(view)
    return None if TICKET.match(ticket) else {"ticket": f"{ticket[:20]!r} is not a ticket id like CONVI-6259"}


def _ticket(view: dict[str, Any]) -> str:
    value = view.get("state", {}).get("values", {}).get("ticket", {}).get("text", {}).get("value")
    return str(value or "").strip().upper()


def edited_text(view: dict[str, Any]) -> str:
    values = view.get("state", {}).get("values", {})
    keys = sorted((k for k in values if k.startswith("part") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    return "\n".join(str(values[k].get("text", {}).get("value") or "") for k in keys)


class LinearFlow:
    def __init__(self, deps: SlackDeps, out: SlackOut, writeups: WriteupService, linear: LinearClient | None) -> None:
        self.deps = deps
        self.out = out
        self.writeups = writeups
        self.linear = linear

    async def draft(self, cmd: v.LinearDraft, who: Who) -> str:
        rows = await asyncio.to_thread(self.writeups.select_jobs, who.channel, cmd.jobs, cmd.since)
        await self._keep_progress(rows)
        d = await asyncio.to_thread(self.writeups.draft, cmd.ticket, who.channel, who.user,
                                    tuple(r.id for r in rows))
        channel, thread_ts = await self._where(rows, who)
        ts = await self.out.post(channel, draft_message(d), thread_ts=thread_ts)
        await asyncio.to_thread(self.writeups.set_message, d.id, channel, thread_ts, ts)
        return d.id

    async def weekly(self, cmd: v.LinearWeekly, who: Who) -> str:
        d = await asyncio.to_thread(self.writeups.weekly, who.channel, who.user, self.deps.now(), cmd.team)
        ts = await self.out.post(who.channel, draft_message(d))
        await asyncio.to_thread(self.writeups.set_message, d.id, who.channel, None, ts)
        return d.id

    async def post_ticket(self, cmd: v.LinearPost, who: Who) -> str:
        """`/linear post TICKET`: post the channel's latest draft for the ticket."""
        d = await asyncio.to_thread(self.writeups.latest, cmd.ticket, who.channel)
        await self.post(d.id, who)
        return d.id

    async def post(self, draft_id: str, who: Who) -> None:
        await self.deps.check_operator(who, "post to Linear")
        if self.linear is None:
            raise UpstreamError(f"Linear is not configured (SHEPHERD_LINEAR_API_KEY); draft {draft_id} is kept and "
                                "can be posted once it is")
        try:
            posted = await self.writeups.post(draft_id, self.linear)
        except ShepherdError as err:
            if not isinstance(err, ConflictError):
                err.message = f"{err.message}. Draft {draft_id} is kept: click Post to Linear again to retry."
            raise
        d = posted.draft
        if posted.already:
            await who.reply(note(f"Draft {d.id} is already posted to {d.ticket}: {posted.comment.url}"))
            return
        await self._show(d, f"posted by <@{who.user}>")
        if d.channel:
            await self.out.post(d.channel, note(f":white_check_mark: Posted to <{posted.comment.url}|{d.ticket}> by "
                                                f"<@{who.user}>."), thread_ts=d.thread_ts or d.message_ts)

    async def edit(self, draft_id: str, who: Who, trigger_id: str) -> None:
        d = await asyncio.to_thread(self.writeups.get, draft_id)
        if d.comment_url:
            raise ConflictError(f"draft {d.id} is already posted ({d.comment_url}); edit it in Linear")
        await self.deps.client.views_open(trigger_id=trigger_id, view=edit_view(d))

    async def save_edit(self, view: dict[str, Any], who: Who) -> str:
        draft_id = str(view.get("private_metadata") or "")
        d = await asyncio.to_thread(self.writeups.edit, draft_id, edited_text(view), who.user)
        await self._show(d, f"edited by <@{who.user}>")
        return d.id

    async def ask_ticket(self, job_id: str, who: Who, trigger_id: str) -> None:
        """The "Draft Linear write-up" button on a finished job's summary (no slash command in a thread)."""
        await asyncio.to_thread(self.deps.records.get, job_id)
        await self.deps.client.views_open(trigger_id=trigger_id, view=ticket_view(job_id, who.channel))

    async def draft_for_job(self, view: dict[str, Any], who: Who) -> str:
        """The ticket modal was submitted (checked first with `ticket_errors`): draft the job's write-up."""
        job_id, _, channel = str(view.get("private_metadata") or "").partition("|")
        if errors := ticket_errors(view):
            raise UserInputError(errors["ticket"])
        here = Who(who.user, channel or who.channel, who.channel_name, who.respond)
        return await self.draft(v.LinearDraft(ticket=_ticket(view), jobs=(job_id,)), here)

    async def view_who(self, body: dict[str, Any]) -> Who:
        """Who submitted one of the modals above, answered privately in the draft's (or job's) channel
        (a view submission carries no response_url)."""
        view = body.get("view") or {}
        meta = str(view.get("private_metadata") or "")
        if view.get("callback_id") == TICKET_CALLBACK:
            channel = meta.partition("|")[2]
        else:
            channel = (await asyncio.to_thread(self.writeups.get, meta)).channel or ""
        user = str((body.get("user") or {}).get("id", ""))

        async def respond(text: str = "", blocks: Any = None, **_: Any) -> None:
            await self.deps.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

        return Who(user, channel, None, respond)

    # ---- helpers ----------------------------------------------------------------------------

    async def _show(self, d: Draft, line: str) -> None:
        if d.channel and d.message_ts:
            await self.out.update(d.channel, d.message_ts, draft_message(d, note_line=line))

    async def _where(self, rows: list[JobRow], who: Who) -> tuple[str, str | None]:
        """The job's thread when the draft covers one job's thread; else the channel."""
        threads = set()
        for r in rows:
            if r.kind in ("backfill", "purge"):
                where = await asyncio.to_thread(self.deps.records.message, r.id, "status")
                if where is not None:
                    threads.add(where)
        if len(threads) == 1:
            channel, ts = threads.pop()
            return channel, ts
        return who.channel, None

    async def _keep_progress(self, rows: list[JobRow]) -> None:
        """Read each job's final progress from Temporal and keep it; on failure, the last one kept is used."""
        for r in rows:
            if r.kind not in ("backfill", "purge") or r.started_at is None:
                continue
            try:
                read = self.deps.jobs.purge_progress if r.kind == "purge" else self.deps.jobs.progress
                progress = await asyncio.wait_for(read(r.id), PROGRESS_TIMEOUT_S)
            except Exception as err:  # Temporal unreachable or the history gone: draft from what Postgres has
                log.info("progress of %s not read for the write-up: %s", r.id, type(err).__name__)
                continue
            await asyncio.to_thread(self.writeups.store_result, r.id, progress)
