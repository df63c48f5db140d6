"""What `/verify` does in Slack: check Postgres against ClickHouse, keep the result as a `verify` job
(for the Linear write-ups), and post the report in the channel, or with `--job` in that job's thread."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.models.blocks import Block

from bot.errors import UserInputError
from bot.jobs.ids import new_job_id
from bot.slack.deps import SlackDeps, Who
from bot.slack.messages import Message, actions, button, context, fields, header, note, section, table_sections
from bot.slack.out import SlackOut
from bot.verify.deep import DeepVerifier, record_deep
from bot.verify.repair import plan_for_job, stored_pairs
from bot.verify.service import VerifyService
from commands import render
from commands import verbs as v
from commands.deep_report import ROW_HEAD, DeepReport, deep_verdict, diff_rows, kinds_phrase
from commands.repair import plan_text
from commands.verify_report import (
    MISMATCH_HEAD,
    VerifyReport,
    mismatch_rows,
    per_customer,
    sample_line,
    types_text,
    verdict,
)

log = logging.getLogger(__name__)
SLACK_ROWS = 15  # mismatch rows shown in Slack; the CLI's --json lists all of them
NAMED = 40  # mismatching customers named in Slack
DEEP_NAMED = 15  # customers named with their rows by kind (longer phrases: one section holds them)


def verify_message(report: VerifyReport, job_id: str, requester: str, deep: DeepReport | None = None) -> Message:
    ok = "MATCH" if report.ok and (deep is None or deep.ok) else "MISMATCH"
    blocks: list[Block] = [
        header(f"Verification {job_id}: {ok}"),
        fields([
            ("Checked", f"{len(report.customers)} customers"),
            ("Matching", str(report.matching)),
            ("Mismatching", str(len(report.mismatching))),
            ("Range", f"{report.start} to {report.end}"),
            ("Appeal types", types_text(report.types)),
            ("Appeal rows in ClickHouse", f"{report.totals.appeal_scorecards:,} scorecards, "
                                          f"{report.totals.appeal_scores:,} scores"),
        ]),
    ]
    if (s := sample_line(report)) is not None:
        blocks.append(context(s))
    for n in report.notes:
        blocks.append(context(n))
    if report.mismatches:
        named = per_customer(report)
        more = f"; and {len(named) - NAMED} more" if len(named) > NAMED else ""
        blocks.append(section("*Mismatching:* " + "; ".join(named[:NAMED]) + more))
        rows, rest = mismatch_rows(report, SLACK_ROWS)
        lines = render.table(MISMATCH_HEAD, rows, right={3, 4, 5}).split("\n")
        blocks += table_sections(lines)
        if rest:
            blocks.append(context(f"{rest:,} more rows not shown (of {len(report.mismatches):,}); "
                                  "`shepherd verify ... --json` lists them all"))
    if deep is not None:
        blocks += deep_blocks(deep)
    if deep is not None and not deep.ok:
        blocks.append(actions(button("Repair...", "verify.repair", job_id)))
    said = verdict(report) if deep is None else deep_verdict(deep)
    icon = ":white_check_mark:" if ok == "MATCH" else ":x:"
    blocks.append(section(f"{icon} {said}"))
    t = report.timings if deep is None else {**report.timings, "total": deep.timings.get("total", 0.0)}
    blocks.append(context(f"requested by <@{requester}> · Postgres {t.get('postgres', 0):.1f} s · ClickHouse "
                          f"{t.get('clickhouse', 0):.1f} s · {t.get('total', 0):.1f} s in all"))
    return Message(f"Verification {job_id}: {said}", blocks)


def deep_blocks(deep: DeepReport) -> list[Block]:
    """The row-by-row part: a summary by kind and customer, and the first rows."""
    blocks: list[Block] = [context(
        f"Row by row: {deep.days_checked:,} customer-days checksummed, {len(deep.days_differing):,} differ; "
        f"{deep.rows_fetched:,} rows fetched to name them"
        + (f"; {deep.unnamed_segments:,} differing segments not read (too many rows): narrow the scope to name them"
           if deep.unnamed_segments else ""))]
    if deep.rows:
        per = [f"{c} ({kinds_phrase(k)})" for c, k in deep.per_customer().items()]
        more = f"; and {len(per) - DEEP_NAMED} more" if len(per) > DEEP_NAMED else ""
        blocks.append(section(f"*Differing rows:* {kinds_phrase(deep.by_kind)}\n*By customer:* "
                              + "; ".join(per[:DEEP_NAMED]) + more))
        rows, rest = diff_rows(deep, SLACK_ROWS)
        blocks += table_sections(render.table(ROW_HEAD, rows, right={3, 4}).split("\n"))
        if rest:
            blocks.append(context(f"{rest:,} more rows not shown (of {len(deep.rows):,}); "
                                  "`shepherd verify ... --deep --json` lists them all"))
    return blocks


class VerifyFlow:
    def __init__(self, deps: SlackDeps, out: SlackOut, verify: VerifyService) -> None:
        self.deps = deps
        self.out = out
        self.verify = verify

    async def run(self, cmd: v.Verify, who: Who) -> str:
        """Returns the verification's job id (v-...)."""
        thread: tuple[str, str] | None = None
        if cmd.job is not None:
            await asyncio.to_thread(self.deps.records.get, cmd.job)  # an unknown job is a clear error
            thread = await asyncio.to_thread(self.deps.records.message, cmd.job, "status")
            if thread is None:
                raise UserInputError(f"job {cmd.job} has no thread yet (it has not started); run /verify without "
                                     "--job, or once it runs")
        refs = self.verify.registry.resolve(cmd.customers)  # unknown names are refused before any query
        today = self.deps.now().astimezone(self.deps.tz).date()
        rng = self.verify.range_for(cmd.start, cmd.end, today)
        await asyncio.to_thread(self.verify.clipped, refs, rng)  # a range without data is refused before the wait
        what = f"a sample of {cmd.sample}" if cmd.sample else (
            "all customers" if cmd.customers is None else ", ".join(cmd.customers[:5])
            + (f" and {len(cmd.customers) - 5} more" if len(cmd.customers) > 5 else ""))
        where = f"in the thread of {cmd.job}" if cmd.job else "here"
        how = " row by row (--deep)" if cmd.deep else ""
        await who.reply(note(f":mag: Verifying {what} against Postgres{how}; the report will be posted {where}."))
        deep: DeepReport | None = None
        if cmd.deep:
            deep = await self.deps.heavy.blocking(DeepVerifier(self.verify).verify, cmd.customers, cmd.sample,
                                                  cmd.start, cmd.end, cmd.types, None, today=today)
            report = deep.counts
        else:
            report = await self.deps.heavy.blocking(self.verify.verify, cmd.customers, cmd.sample, cmd.start,
                                                    cmd.end, cmd.types, None, today=today)
        job_id = new_job_id("verify")
        await asyncio.to_thread(self.verify.record, self.deps.records.pool, job_id, report, who.user, who.channel,
                                cmd.job)
        if deep is not None:
            await asyncio.to_thread(record_deep, self.deps.records.pool, job_id, deep)
        msg = verify_message(report, job_id, who.user, deep)
        if thread is not None:
            ts = await self.out.post(thread[0], msg, thread_ts=thread[1])
        else:
            ts = await self.out.post(who.channel, msg)
        if ts:  # where /verify repair posts the plan: under the report
            await asyncio.to_thread(self.deps.records.set_message, job_id, "report",
                                    thread[0] if thread else who.channel, thread[1] if thread else ts)
        if deep is not None and deep.rows:
            under = thread or (who.channel, ts)
            await self._chart(deep, job_id, under[0], under[1])
        return job_id

    async def repair(self, cmd: v.VerifyRepair, who: Who) -> str | None:
        """`/verify repair JOB`: the plan that repairs exactly what the deep verification JOB found, verified
        again first and shown with its numbers under the report; nothing runs (operators only)."""
        await self.deps.check_operator(who, "repair a verification's differences")
        job = await asyncio.to_thread(self.deps.records.get, cmd.job)
        pairs, _, _ = stored_pairs(job)  # a clear refusal before the wait
        await who.reply(note(f":mag: Verifying the {len(pairs):,} customer-days {cmd.job} found different again "
                             "before planning their repair."))
        plan = await self.deps.heavy.blocking(plan_for_job, DeepVerifier(self.verify), job)
        under = await asyncio.to_thread(self.deps.records.message, cmd.job, "report")
        text = plan_text(plan)
        blocks: list[Block] = [header(f"Repair plan for verification {cmd.job}")]
        blocks += table_sections(text.split("\n"))
        blocks.append(context(f"report {plan.report_hash}: verified again just now, the same differences · "
                              f"requested by <@{who.user}> · nothing has run: each command above takes its own "
                              "locks, and the purge its approval"))
        msg = Message(f"Repair plan for verification {cmd.job}: " + text.split("\n")[0], blocks)
        channel, thread_ts = under if under is not None else (who.channel, None)
        purpose = f"repair {plan.report_hash}"  # one post per report, however many clicks
        if not await asyncio.to_thread(self.deps.records.claim_message, cmd.job, purpose, channel):
            raise UserInputError(f"the repair plan of {cmd.job} (report {plan.report_hash}) is already posted under "
                                 "its report; nothing was posted again")
        ts = await self.out.post(channel, msg, thread_ts=thread_ts)
        await asyncio.to_thread(self.deps.records.set_message, cmd.job, purpose, channel, ts or "")
        return plan.report_hash

    async def _chart(self, deep: DeepReport, job_id: str, channel: str, thread_ts: str) -> None:
        """Differing rows per day, by kind, under the report (a nicety: the report stands without it)."""
        if self.deps.chart_dir is None:
            return
        from bot.verify.chart import deep_chart

        path = self.deps.chart_dir / f"{job_id}.png"
        title = f"Verification {job_id}: differing rows per day, by kind"
        try:
            await self.deps.heavy.draw(deep_chart, deep.per_day_and_kind(), title, path)
        except Exception:
            log.exception("could not draw the chart of %s", job_id)
            return
        await self.out.upload(channel, thread_ts, path, title)
