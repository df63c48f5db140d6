"""Linear write-ups: which jobs a draft covers, their records (from shepherd.jobs, job_results,
audit_log and events_posted) as the plain records `commands.writeup` renders, the drafts in
shepherd.linear_drafts, and posting a draft as one Linear comment, once.

Posting twice makes one comment: a click claims the draft (one conditional UPDATE), and the comment
is created under an id fixed in the draft before the first call, so after a crash between Linear's
answer and our write, the next click finds that comment instead of creating another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.adapters.linear import LinearClient, LinearComment, LinearError
from bot.config import ShepherdConfig
from bot.errors import ConflictError, ShepherdError, UserInputError
from bot.job_records import OPEN_STATES, JobRecords, JobRow
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


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


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
        ids = [r.id for r in rows]
        with self.pool.connection() as conn:
            results = {str(k): _json(v) for k, v in conn.execute(
                "SELECT job_id, progress FROM shepherd.job_results WHERE job_id = ANY(%s)", (ids,)).fetchall()}
            audit = conn.execute(
                "SELECT at, actor, action, target, outcome, details->>'text' FROM shepherd.audit_log"
                " WHERE (target = ANY(%s) OR details->>'text' ~ %s) AND outcome = 'ok' ORDER BY at",
                (ids, "|".join(re.escape(i) for i in ids) or "^$")).fetchall()
            events = conn.execute("SELECT posted_at, job_id, event_key FROM shepherd.events_posted"
                                  " WHERE job_id = ANY(%s) ORDER BY posted_at", (ids,)).fetchall()
        jobs, purges, backfills, verifications = [], [], [], []
        for row in rows:
            jobs.append(w.JobInfo(row.id, row.kind, row.requester, row.state, _utc(row.created_at) or row.created_at,
                                  _utc(row.started_at), _utc(row.finished_at), _summary(row), row.error))
            result = results.get(row.id)
            if row.kind == "purge" and row.plan:
                purges.append(_purge(row, result))
            elif row.kind == "backfill" and row.plan:
                backfills += _backfill(row, result)
            elif row.kind == "verify" and row.plan:
                verifications.append(_verification(row))
        actions = []
        for at, actor, action, target, outcome, text in audit:
            job = target if target in ids else next((i for i in ids if text and i in text), None)
            actions.append(w.ActionInfo(_utc(at) or at, actor, text or action, job, outcome or ""))
        first = {c.name: c.regions[0].name for c in self.config.clusters}
        return w.Records(tuple(jobs), tuple(purges), tuple(backfills), tuple(verifications), tuple(actions),
                         tuple(w.EventInfo(_utc(at) or at, j, k) for at, j, k in events), first)

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
                                    _summary(r)) for r in map(self.records.get, open_ids))
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


# ---- job rows -> records --------------------------------------------------------------------


def _summary(row: JobRow) -> str:
    p = row.plan or {}
    if row.kind == "purge":
        chunks = sum(len(c.get("chunks", ())) for c in p.get("clusters", ()))
        return (f"types {w.types_text(p.get('types', ()))}, {len(p.get('clusters', ()))} clusters, "
                f"{p.get('total_scorecards', 0):,} scorecards + {p.get('total_scores', 0):,} scores in {chunks} chunks")
    if row.kind == "backfill":
        windows = sum(len(c.get("windows", ())) for c in p.get("customers", ()))
        return f"{len(p.get('customers', ()))} customers, {windows} windows, parallel {p.get('parallel', '?')}"
    return str(p.get("verdict", ""))


def _day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])


def _purge(row: JobRow, result: dict[str, Any] | None) -> w.PurgeInfo:
    p = row.plan or {}
    states = (result or {}).get("clusters", {})
    clusters = []
    for cp in p.get("clusters", ()):
        chunks, done = cp.get("chunks", []), states.get(cp["cluster"])
        spans: dict[tuple[str, str], list[bool]] = {}
        for ch in chunks:
            spans.setdefault((ch["customer"], ch["table"]), []).append(ch["start"] == ch["end"])
        one_day: dict[str, int] = {}
        for (customer, _), days in spans.items():
            if len(days) > 1 and all(days):
                one_day[customer] = max(one_day.get(customer, 0), len(days))
        counted = {t: sum(c["rows_deleted"] for c in (done or []) if c["table"] == t) for t in ("scorecards", "scores")}
        planned = {t: sum(c["rows"] for c in chunks if c["table"] == t) for t in ("scorecards", "scores")}
        rows = counted if done else planned
        n_done = sum(1 for c in done if c["state"] == "done") if done else (len(chunks) if row.state == "done" else 0)
        clusters.append(w.ClusterDeletion(cp["cluster"], rows["scorecards"], rows["scores"], len(chunks), n_done,
                                          bool(done), tuple(sorted(one_day.items()))))
    failed = tuple(f"{k} {c['customer']} {c['table']} {c['start']}..{c['end']}: {c.get('last_failure') or c['state']}"
                   for k, cs in sorted(states.items()) for c in cs if c["state"] in ("failed", "cancelled"))
    rng = p.get("range", {})
    return w.PurgeInfo(row.id, _day(rng["start"]), _day(rng["end"]), tuple(p.get("types", ())),
                       int(p.get("max_rows_per_mutation", 0)), tuple(clusters), (result or {}).get("stop_reason"),
                       failed)


def _backfill(row: JobRow, result: dict[str, Any] | None) -> list[w.CustomerBackfill]:
    states = {s["key"]: s for s in (result or {}).get("windows", ())}
    later_run = int((result or {}).get("run", 1)) > 1
    out = []
    for c in (row.plan or {}).get("customers", ()):
        runs = []
        for win in c.get("windows", ()):
            s = states.get(f"{c['customer']}:{win['start']}:{win['end']}")
            if s is None:  # no progress kept, or done in an earlier run than the one kept
                state = "done" if row.state == "done" or later_run else row.state
                runs.append(w.WindowRun(_day(win["start"]), _day(win["end"]), state, int(win["conversations"])))
                continue
            secs = None
            if s.get("started") and s.get("finished"):
                secs = (datetime.fromisoformat(s["finished"]) - datetime.fromisoformat(s["started"])).total_seconds()
            runs.append(w.WindowRun(_day(win["start"]), _day(win["end"]), s["state"],
                                    int(s.get("total") or win["conversations"]), secs,
                                    max(1, int(s.get("attempt") or 1)), s.get("last_failure"), s.get("region"),
                                    s.get("resumed_from")))
        out.append(w.CustomerBackfill(row.id, c["customer"], c["cluster"], int(c["window_days"]), str(c["rule"]),
                                      tuple(runs)))
    return out


def _verification(row: JobRow) -> w.VerificationInfo:
    p = row.plan or {}
    at = _utc(row.finished_at or row.created_at) or row.created_at
    return w.VerificationInfo(row.id, at, int(p.get("checked", 0)), int(p.get("matching", 0)),
                              int(p.get("mismatching", 0)), bool(p.get("ok")), str(p.get("verdict", "")),
                              p.get("sample"), p.get("seed"))
