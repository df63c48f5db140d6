"""From a parsed command or a clicked button to the flow that does it; errors become replies here.

Every error a person can cause maps to one ephemeral reply (what is wrong, and the usage line for
a command); anything unexpected is logged with its traceback and answered with a reference, never
swallowed. Everything said and clicked goes to the audit log with its outcome.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import ShepherdError
from bot.slack import blocks
from bot.slack.backfill_flow import BackfillFlow
from bot.slack.backfill_modal import PlanForm
from bot.slack.deps import SlackDeps, Who
from bot.slack.home_flow import HomeFlow, ephemeral_respond
from bot.slack.job_flow import JobFlow
from bot.slack.linear_flow import LinearFlow
from bot.slack.messages import error, note
from bot.slack.out import SlackOut
from bot.slack.outbox import Outbox
from bot.slack.purge_flow import PurgeFlow
from bot.slack.verify_flow import VerifyFlow
from bot.verify.service import VerifyService
from bot.writeups.service import WriteupService
from commands import verbs as v
from commands.grammar import USAGE

log = logging.getLogger(__name__)

USAGE_OF = {"backfill_plan": "backfill plan", "backfill_run": "backfill run", "job_status": "backfill status",
            "retry": "backfill retry", "throttle": "backfill throttle", "purge_plan": "purge plan",
            "purge_run": "purge run", "verify": "verify", "verify_repair": "verify repair",
            "linear_draft": "linear draft", "linear_post": "linear post",
            "linear_weekly": "linear weekly", "jobs": "shepherd jobs", "help": "shepherd help"}


class Router:
    def __init__(self, deps: SlackDeps, outbox: Outbox | None = None) -> None:
        self.deps = deps
        out = SlackOut(deps.client, deps.records, outbox)
        self.backfill = BackfillFlow(deps, out)
        self.purge = PurgeFlow(deps, out)
        self.jobs = JobFlow(deps, out)
        planning = deps.planning
        self.verify = VerifyFlow(deps, out, VerifyService(deps.config, planning.registry, planning.source,
                                                          planning.lookup))
        self.linear = LinearFlow(deps, out, WriteupService(deps.records.pool, deps.config), deps.linear)
        self.home = HomeFlow(deps, self.backfill)

    async def audit(self, who: Who, action: str, outcome: str, **details: Any) -> None:
        await asyncio.to_thread(self.deps.audit.record, who.user, action, target=details.pop("target", None),
                                plan_hash=details.pop("plan_hash", None), outcome=outcome, channel=who.channel,
                                **details)

    async def command(self, cmd: v.Command, text: str, who: Who) -> None:
        usage = USAGE.get(USAGE_OF.get(cmd.kind, ""), None)
        if cmd.kind == "job_action":
            usage = USAGE[f"backfill {cmd.action}"]
        await self._guarded(who, f"/{cmd.kind}", lambda: self._command(cmd, who), usage=usage, text=text)

    async def _command(self, cmd: v.Command, who: Who) -> Any:
        self.deps.check_channel(who)
        match cmd:
            case v.Help():
                await who.reply(blocks.help_message())
            case v.Jobs():
                await self.jobs.jobs(who)
            case v.BackfillPlan():
                return await self.backfill.plan(cmd, who)
            case v.BackfillRun():
                return await self.backfill.run(cmd, who)
            case v.JobStatus():
                await self.jobs.status(cmd, who)
            case v.JobAction():
                await self.jobs.act(cmd, who)
            case v.Retry():
                await self.jobs.retry(cmd.job, cmd.failed_only, who)
            case v.Throttle():
                await self.jobs.throttle(cmd, who)
            case v.PurgePlanCmd():
                await self.purge.plan(cmd, who)
            case v.PurgeRun():
                return await self.purge.request(cmd, who)
            case v.Verify():
                return await self.verify.run(cmd, who)
            case v.VerifyRepair():
                return await self.verify.repair(cmd, who)
            case v.LinearDraft():
                return await self.linear.draft(cmd, who)
            case v.LinearPost():
                return await self.linear.post_ticket(cmd, who)
            case v.LinearWeekly():
                return await self.linear.weekly(cmd, who)
            case _:
                await who.reply(note(f":construction: `{cmd.kind.replace('_', ' ')}` is not built yet in this "
                                     "version of Shepherd; nothing was done."))
        return None

    async def button(self, action_id: str, value: str, who: Who, trigger_id: str = "") -> None:
        handlers: dict[str, Callable[[], Awaitable[Any]]] = {
            "backfill.run": lambda: self.backfill.on_run(value, who),
            "plan.dismiss": lambda: self.backfill.on_dismiss(value, who),
            "purge.approve": lambda: self.purge.decide(value, "approve", who),
            "purge.reject": lambda: self.purge.decide(value, "reject", who),
            "job.ask_cancel": lambda: self.jobs.ask(value, "cancel", who),
            "job.cancel": lambda: self.jobs.control(value, "cancel", who),
            "job.pause": lambda: self.jobs.control(value, "pause", who),
            "job.resume": lambda: self.jobs.control(value, "resume", who),
            "job.retry": lambda: self.jobs.retry(value, True, who),
            "job.keep": lambda: who.reply(note(f"OK, `{value}` keeps running.")),
            "job.writeup": lambda: self.linear.ask_ticket(value, who, trigger_id),
            "linear.post": lambda: self.linear.post(value, who),
            "linear.edit": lambda: self.linear.edit(value, who, trigger_id),
            "home.plan_backfill": lambda: self.home.open_plan(who, trigger_id),
            "verify.repair": lambda: self.verify.repair(v.VerifyRepair(job=value), who),
        }
        handler = handlers.get(action_id)
        if handler is None:
            await who.reply(error(f"unknown button {action_id!r}"))
            return
        await self._guarded(who, f"click {action_id}", handler, target=value.partition(":")[0],
                            plan_hash=value.partition(":")[2] or None)

    async def plan_form(self, form: PlanForm, user: str) -> None:
        """The Home tab's "Plan a backfill" modal, submitted and checked."""
        who = Who(user, form.channel, None, ephemeral_respond(self.deps.client, user, form.channel))
        await self._guarded(who, "/backfill_plan", lambda: self.home.plan(form, user), text=form.text)

    async def view(self, callback_id: str, view: dict[str, Any], body: dict[str, Any]) -> None:
        who = await self.linear.view_who(body)
        if callback_id == "linear.edit":
            await self._guarded(who, "edit linear draft", lambda: self.linear.save_edit(view, who))
        else:
            await self._guarded(who, "draft linear write-up", lambda: self.linear.draft_for_job(view, who))

    async def _guarded(self, who: Who, action: str, run: Callable[[], Awaitable[Any]], *, usage: str | None = None,
                       **details: Any) -> None:
        try:
            result = await run()
        except ShepherdError as err:
            await who.reply(error(err.message, err.usage or (usage if err.exit_code == 2 else None)))
            await self.audit(who, action, f"refused: {err.message}", **details)
            return
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("error %s while handling %s for %s", ref, action, who.user)
            await who.reply(error(f"something went wrong on Shepherd's side (reference {ref}); it is in the logs."))
            await self.audit(who, action, f"error {ref}", **details)
            return
        if isinstance(result, str) and result:
            details.setdefault("target", result)
        await self.audit(who, action, "ok", **details)
