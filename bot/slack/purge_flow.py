"""What `/purge` does: plan, request approval (Approve/Reject), and start once approved.

The request message carries the plan hash in its buttons; an approval counts for that hash only.
Before an approved purge starts, the plan is made again from the same request: if the data
changed, its hash differs and nothing starts (the workflow's drift guard is the second line).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from bot.errors import ConflictError, ShepherdError, UserInputError
from bot.jobs.approvals import Decision, DecisionOutcome
from bot.jobs.ids import new_job_id
from bot.jobs.records import JobRow
from bot.planning import PurgeRequest
from bot.slack import blocks, job_blocks
from bot.slack.approval_copies import ApprovalCopies
from bot.slack.deps import SlackDeps, Who
from bot.slack.messages import note
from bot.slack.notices import RequesterNotices
from bot.slack.out import SlackOut
from bot.slack.outbox import Outbox
from commands import verbs as v
from commands.models import DateRange, PurgePlan

log = logging.getLogger(__name__)


class PurgeFlow:
    def __init__(self, deps: SlackDeps, out: SlackOut) -> None:
        self.deps = deps
        self.out = out
        self.copies = ApprovalCopies(deps, out)
        self.notices = RequesterNotices(deps.client, Outbox(deps.records.pool), deps.records,
                                        enabled=deps.config.slack.requester_dms)

    def _request(self, args: v.PurgeArgs) -> PurgeRequest:
        planning = self.deps.planning
        planning.registry.resolve(args.customers)
        planning.registry.check_clusters(args.clusters)
        today = self.deps.now().astimezone(self.deps.tz).date()
        rng = planning.range_for(args.start, args.end, today)
        return PurgeRequest(args.customers, rng, args.types, args.clusters, args.max_rows)

    async def _plan(self, req: PurgeRequest) -> PurgePlan:
        today = self.deps.now().astimezone(self.deps.tz).date()
        return (await self.deps.heavy.blocking(self.deps.planning.plan_purge, req, today)).plan

    async def plan(self, cmd: v.PurgePlanCmd, who: Who) -> None:
        plan = await self._plan(self._request(cmd.args))
        await self.out.post(who.channel, blocks.purge_plan(plan, None, who.user,
                                                           footer="a plan only: `/purge ...` asks for approval"))

    async def request(self, cmd: v.PurgeRun, who: Who) -> str:
        await self.deps.check_operator(who, "request a purge")
        req = self._request(cmd.args)
        plan = await self._plan(req)
        if not any(cp.chunks for cp in plan.clusters):
            await who.reply(note("Nothing to delete: the plan has no rows in that range. Nothing was requested."))
            return ""
        job_id = new_job_id("purge")
        params = {"customers": req.customers, "start": req.range.start if req.range else None,
                  "end": req.range.end if req.range else None, "types": req.types, "clusters": req.clusters,
                  "max_rows": req.max_rows}
        await asyncio.to_thread(self.deps.records.create, job_id, "purge", "awaiting_approval", who.user, who.channel,
                                plan, params)
        row = await asyncio.to_thread(self.deps.records.get, job_id)
        wait = blocks.approval_wait(who.user, self.deps.config.access.approvals_required, [],
                                    self.deps.approvals.expires_at(row.created_at))
        msg = blocks.purge_plan(plan, job_id, who.user, approval=wait, buttons=True)
        ts = await self.out.post(who.channel, msg)  # the channel copy first, then the approvers' copies
        await asyncio.to_thread(self.deps.records.set_message, job_id, "request", who.channel, ts)
        await self.copies.send(job_id, msg, who.user, (who.channel, ts))
        self.deps.changed([who.user, *await self.copies.approvers(who.user)])
        return job_id

    async def decide(self, value: str, decision: Decision, who: Who) -> DecisionOutcome:
        job_id, _, shown_hash = value.partition(":")
        groups = await self.deps.groups_of(who.user)
        try:
            outcome = await asyncio.to_thread(self.deps.approvals.decide, job_id, who.user, decision, shown_hash,
                                              self.deps.now(), groups)
        except ConflictError as err:
            row = await asyncio.to_thread(self.deps.records.get, job_id)
            if row.state == "expired":  # the request ends here: say so on every copy, without buttons
                await self._show(row, PurgePlan.model_validate(row.plan), f":hourglass: {err.message}")
                await self.notices.tell(job_id, row.requester, "expired", f":hourglass: Your purge request "
                                        f"`{job_id}` expired before anyone approved it. Nothing was deleted; run "
                                        "/purge again for a fresh plan.")
                await self._changed(row)
            raise
        row = await asyncio.to_thread(self.deps.records.get, job_id)
        plan = PurgePlan.model_validate(row.plan)
        at = f"{outcome.decided_at:%Y-%m-%d %H:%M} UTC"
        if outcome.state == "rejected":
            await self._show(row, plan, f":no_entry: Rejected by <@{who.user}> at {at}. Nothing was deleted.")
            await self.notices.tell(job_id, row.requester, "rejected", f":no_entry: Your purge request `{job_id}` "
                                    f"was rejected by <@{who.user}>. Nothing was deleted.")
        elif outcome.state == "recorded":
            wait = blocks.approval_wait(row.requester, outcome.needed, [u for u, _ in outcome.approvals],
                                        self.deps.approvals.expires_at(row.created_at))
            await self._show(row, plan, wait, buttons=True)
            await who.reply(note(f"Your approval of {job_id} is recorded ({len(outcome.approvals)} of "
                                 f"{outcome.needed})."))
        else:
            await self._start(row, plan, outcome, who, at)
        await self._changed(row)
        return outcome

    async def _changed(self, row: JobRow) -> None:
        """The requester's and the approvers' Home tabs show this request."""
        self.deps.changed([row.requester, *await self.copies.approvers(row.requester)])

    async def _start(self, row: JobRow, plan: PurgePlan, outcome: DecisionOutcome, who: Who, at: str) -> None:
        try:
            again_hash = (await self._plan(self._stored_request(row))).plan_hash
        except UserInputError:  # e.g. nothing left to delete in that range
            again_hash = "empty"
        if again_hash != plan.plan_hash:
            await asyncio.to_thread(self.deps.records.set_state, row.id, "stale",
                                    f"the data changed after approval (plan {plan.plan_hash} -> {again_hash})",
                                    finished=True)
            await self._show(row, plan, f":warning: Approved by <@{who.user}> at {at}, but the data changed since "
                                        f"the plan was made (plan `{plan.plan_hash}` is now `{again_hash}`). "
                                        "Nothing was deleted: run `/purge` again for a fresh plan.")
            await self.notices.tell(row.id, row.requester, "stale", f":warning: Your purge `{row.id}` was approved, "
                                    "but the data changed since it was planned, so nothing was deleted. Run /purge "
                                    "again for a fresh plan.")
            raise ConflictError(f"the data changed since purge {row.id} was planned; nothing was deleted")
        names = ", ".join(f"<@{u}>" for u, _ in outcome.approvals)
        await self._show(row, plan, f":white_check_mark: Approved by {names}; started at {at}. Progress in the thread.")
        where = await asyncio.to_thread(self.deps.records.message, row.id, "request")
        assert where is not None
        await asyncio.to_thread(self.deps.records.set_message, row.id, "status", *where)
        try:
            await self.deps.jobs.start_purge(plan, row.id, row.requester, row.channel)
        except ShepherdError as err:
            await self.out.post(where[0], note(f":x: {row.id} did not start: {err.message}"), thread_ts=where[1])
            raise
        await self.out.post(where[0], note(f"Purge {row.id} started: {plan.total_scorecards:,} scorecards and "
                                           f"{plan.total_scores:,} scores to delete."), thread_ts=where[1])
        await self.out.post(where[0], job_blocks.job_controls(row.id, "purge", "running"), thread_ts=where[1])
        await self.notices.tell(row.id, row.requester, "approved", f":white_check_mark: Your purge `{row.id}` was "
                                f"approved by {names} and has started.")

    def _stored_request(self, row: JobRow) -> PurgeRequest:
        p = row.params
        rng = DateRange(start=date.fromisoformat(p["start"]), end=date.fromisoformat(p["end"]))
        tup = lambda x: tuple(x) if x is not None else None  # noqa: E731
        return PurgeRequest(tup(p["customers"]), rng, tup(p["types"]), tup(p["clusters"]), p["max_rows"])

    async def _show(self, row: JobRow, plan: PurgePlan, approval: str, *, buttons: bool = False) -> None:
        """Every copy of the request (its channel message and the approvers' direct messages) shows `approval`."""
        where = await asyncio.to_thread(self.deps.records.message, row.id, "request")
        msg = blocks.purge_plan(plan, row.id, row.requester, approval=approval, buttons=buttons)
        await self.copies.show(row.id, msg, where)
