"""Linear write-ups: which jobs a draft covers, their records (gathered by `bot.writeups.records` for
`commands.writeup` to render), the drafts in shepherd.linear_drafts, and posting a draft as one
Linear comment, once.

Posting twice makes one comment: a click claims the draft (one conditional UPDATE), and the comment
is created under an id fixed in the draft before the first call, so after a crash between Linear's
answer and our write, the next click finds that comment instead of creating another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.adapters.linear import LinearClient, LinearComment, LinearError
from bot.config import ShepherdConfig
from bot.errors import ConflictError, ShepherdError, UserInputError
from bot.jobs.records import OPEN_STATES, JobRecords, JobRow
from bot.writeups.records import gather, summary
from commands import weekly
from commands import writeup as w

STALE_POST = timedelta(minutes=5)  # a claim older than this was left by a crashed process
_DRAFT = ("id, kind, ticket, job_ids, markdown, channel, thread_ts, message_ts, comment_id, comment_url, created_at,"
          " posted_at, attempts, last_error, requester, comment_uuid, posting_at")


@dataclass(frozen=True)
class Draft:
    id: str
    kind: str
    ticket: str
    job_ids: tuple[str, ...]
    markdown: str
    channel: str | None
    thread_ts: str | None
    message_ts: str | None
    comment_id: str | None
    comment_url: str | None
    created_at: datetime
    posted_at: datetime | None
    attempts: int
    last_error: str | None
    requester: str | None
    comment_uuid: str | None
    posting_at: datetime | None


@dataclass(frozen=True)
class Posted:
    draft: Draft
    comment: LinearComment
    already: bool  # posted by an earlier click: nothing new was created


def _draft(r: Any) -> Draft:
    return Draft(id=str(r[0]), kind=r[1], ticket=r[2], job_ids=tuple(r[3] or ()), markdown=r[4], channel=r[5],
                 thread_ts=r[6], message_ts=r[7], comment_id=r[8], comment_url=r[9], created_at=r[10],
                 posted_at=r[11], attempts=int(r[12]), last_error=r[13], requester=r[14],
                 comment_uuid=str(r[15]) if r[15] else None, posting_at=r[16])


class WriteupService:
    def __init__(self, pool: Any, config: ShepherdConfig) -> None:
        self.pool = pool
        self.config = config
        self.records = JobRecords(pool)

    # ---- which jobs -----------------------------------------------------------------------

    def select_jobs(self, channel: str | None, job_ids: tuple[str, ...] | None = None,
                    since: date | None = None) -> list[JobRow]:
        """--jobs as named; --since: finished in the channel since then; else since the channel's last write-up."""
        if job_ids:
            rows = [self.records.get(j) for j in job_ids]
            linked = self._ids("SELECT id FROM shepherd.jobs WHERE kind = 'verify' AND params->>'job' = ANY(%s)"
                               " AND NOT (id = ANY(%s)) ORDER BY finished_at", (list(job_ids), list(job_ids)))
            return rows + [self.records.get(j) for j in linked]
        if since is None:
            with self.pool.connection() as conn:
                last = conn.execute("SELECT max(created_at) FROM shepherd.linear_drafts WHERE channel = %s"
                                    " AND kind = 'ticket'", (channel,)).fetchone()
            after = last[0] if last and last[0] else datetime(1970, 1, 1, tzinfo=UTC)
            what = "since the last write-up in this channel" if last and last[0] else "in this channel"
        else:
            after, what = datetime.combine(since, datetime.min.time(), tzinfo=UTC), f"since {since}"
        ids = self._ids("SELECT id FROM shepherd.jobs WHERE channel IS NOT DISTINCT FROM %s AND finished_at > %s"
                        " AND started_at IS NOT NULL ORDER BY finished_at", (channel, after))
        if not ids:
            raise UserInputError(f"no finished jobs {what}; name them with --jobs J1,J2 or pick a --since date")
        return [self.records.get(j) for j in ids]

    def _ids(self, query: str, args: tuple[Any, ...]) -> list[str]:
        with self.pool.connection() as conn:
            return [str(r[0]) for r in conn.execute(query, args).fetchall()]

    # ---- records ----------------------------------------------------------------------------

    def store_result(self, job_id: str, progress: Any) -> None:
        """Keep a job's progress (a BackfillProgress or PurgeProgress) for write-ups drafted later."""
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO shepherd.job_results (job_id, progress) VALUES (%s, %s) ON CONFLICT (job_id)"
                         " DO UPDATE SET progress = EXCLUDED.progress, taken_at = now()",
                         (job_id, json.dumps(dataclasses.asdict(progress), default=str)))

    def gather(self, rows: list[JobRow]) -> w.Records:
        return gather(self.pool, self.config, rows)

    # ---- drafts -----------------------------------------------------------------------------

    def draft(self, ticket: str, channel: str | None, requester: str, job_ids: tuple[str, ...] | None = None,
              since: date | None = None) -> Draft:
        rows = self.select_jobs(channel, job_ids, since)
        markdown = w.render_writeup(ticket, self.gather(rows))
        return self._insert("ticket", ticket, [r.id for r in rows], markdown, channel, requester)

    def weekly(self, channel: str | None, requester: str, now: datetime, team: str | None = None) -> Draft:
        start = now - timedelta(days=7)
        ids = self._ids("SELECT id FROM shepherd.jobs WHERE finished_at >= %s AND finished_at <= %s"
                        " AND started_at IS NOT NULL ORDER BY finished_at", (start, now))
        rows = [self.records.get(j) for j in ids]
        open_ids = self._ids("SELECT id FROM shepherd.jobs WHERE state = ANY(%s) AND started_at IS NOT NULL"
                             " ORDER BY created_at", (list(OPEN_STATES),))
        open_jobs = tuple(w.JobInfo(r.id, r.kind, r.requester, r.state, r.created_at, r.started_at, r.finished_at,
                                    summary(r)) for r in map(self.records.get, open_ids))
        with self.pool.connection() as conn:
            unposted = conn.execute("SELECT id::text, ticket FROM shepherd.linear_drafts WHERE kind = 'ticket'"
                                    " AND comment_id IS NULL AND created_at >= %s ORDER BY id", (start,)).fetchall()
        week = weekly.WeeklyInput(start.date(), now.date(), self.gather(rows), open_jobs,
                             tuple((str(d), str(t)) for d, t in unposted), team)
        return self._insert("weekly", team or "", ids, weekly.render_weekly(week), channel, requester)

    def _insert(self, kind: str, ticket: str, job_ids: list[str], markdown: str, channel: str | None,
                requester: str) -> Draft:
        with self.pool.connection() as conn:
            r = conn.execute(
                f"INSERT INTO shepherd.linear_drafts (kind, ticket, job_ids, markdown, channel, requester)"
                f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_DRAFT}",
                (kind, ticket, job_ids, markdown, channel, requester)).fetchone()
        return _draft(r)

    def get(self, draft_id: str) -> Draft:
        if not draft_id.isdigit():
            raise UserInputError(f"{draft_id[:20]!r} is not a draft id")
        with self.pool.connection() as conn:
            r = conn.execute(f"SELECT {_DRAFT} FROM shepherd.linear_drafts WHERE id = %s", (int(draft_id),)).fetchone()
        if r is None:
            raise UserInputError(f"no draft {draft_id}")
        return _draft(r)

    def latest(self, ticket: str, channel: str | None) -> Draft:
        with self.pool.connection() as conn:
            r = conn.execute(f"SELECT {_DRAFT} FROM shepherd.linear_drafts WHERE ticket = %s AND kind = 'ticket'"
                             " AND channel IS NOT DISTINCT FROM %s ORDER BY id DESC LIMIT 1",
                             (ticket, channel)).fetchone()
        if r is None:
            raise UserInputError(f"no draft for {ticket} in this channel: `/linear draft {ticket}` makes one")
        return _draft(r)

    def set_message(self, draft_id: str, channel: str, thread_ts: str | None, message_ts: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE shepherd.linear_drafts SET channel = %s, thread_ts = %s, message_ts = %s"
                         " WHERE id = %s", (channel, thread_ts, message_ts, int(draft_id)))

    def edit(self, draft_id: str, markdown: str, who: str) -> Draft:
        if not markdown.strip():
            raise UserInputError("the draft cannot be empty")
        with self.pool.connection() as conn:
            r = conn.execute(
                f"UPDATE shepherd.linear_drafts SET markdown = %s, edited_by = %s, updated_at = now() WHERE id = %s"
                f" AND comment_id IS NULL AND (posting_at IS NULL OR posting_at < now() - %s) RETURNING {_DRAFT}",
                (markdown, who, int(draft_id), STALE_POST)).fetchone()
        if r is None:
            d = self.get(draft_id)
            if d.comment_id:
                raise ConflictError(f"draft {draft_id} is already posted ({d.comment_url}); edit it in Linear")
            raise ConflictError(f"draft {draft_id} is being posted right now; edit it in Linear afterwards")
        return _draft(r)

    # ---- posting ------------------------------------------------------------------------------

    async def post(self, draft_id: str, linear: LinearClient) -> Posted:
        claimed = await asyncio.to_thread(self._claim, draft_id)
        if claimed is None:
            d = await asyncio.to_thread(self.get, draft_id)
            if d.comment_id and d.comment_url:
                return Posted(d, LinearComment(d.comment_id, d.comment_url), already=True)
            if d.kind != "ticket":
                raise UserInputError(f"draft {draft_id} is a weekly summary: copy it where your team keeps them")
            raise ConflictError(f"draft {draft_id} is being posted right now")
        assert claimed.comment_uuid is not None
        try:
            issue = await linear.issue(claimed.ticket)
            comment = await linear.find_comment(claimed.comment_uuid) if claimed.attempts > 1 else None
            if comment is None:
                try:
                    comment = await linear.comment(issue.id, claimed.markdown, comment_id=claimed.comment_uuid)
                except LinearError:  # an earlier attempt's comment, whose answer never reached us?
                    comment = await linear.find_comment(claimed.comment_uuid)
                    if comment is None:
                        raise
        except ShepherdError as err:
            await asyncio.to_thread(self._release, draft_id, err.message)
            raise
        except BaseException:
            await asyncio.to_thread(self._release, draft_id, "interrupted")
            raise
        done = await asyncio.to_thread(self._posted, draft_id, comment)
        return Posted(done, comment, already=False)

    def _claim(self, draft_id: str) -> Draft | None:
        self.get(draft_id)  # a clear error for an unknown id
        with self.pool.connection() as conn:
            r = conn.execute(
                "UPDATE shepherd.linear_drafts SET posting_at = now(), attempts = attempts + 1,"
                " comment_uuid = COALESCE(comment_uuid, %s), updated_at = now()"
                " WHERE id = %s AND kind = 'ticket' AND comment_id IS NULL"
                f" AND (posting_at IS NULL OR posting_at < now() - %s) RETURNING {_DRAFT}",
                (uuid.uuid4(), int(draft_id), STALE_POST)).fetchone()
        return _draft(r) if r else None

    def _release(self, draft_id: str, reason: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE shepherd.linear_drafts SET posting_at = NULL, last_error = %s WHERE id = %s",
                         (reason[:500], int(draft_id)))

    def _posted(self, draft_id: str, comment: LinearComment) -> Draft:
        with self.pool.connection() as conn:
            r = conn.execute(
                "UPDATE shepherd.linear_drafts SET comment_id = %s, comment_url = %s, posted_at = now(),"
                f" posting_at = NULL, last_error = NULL WHERE id = %s RETURNING {_DRAFT}",
                (comment.id, comment.url, int(draft_id))).fetchone()
        return _draft(r)
