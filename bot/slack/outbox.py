"""The Slack outbox: every write to Slack is a row in `shepherd.outbox` until Slack accepted it.

Callers `enqueue` a Web API call under a dedupe key they derive from what the message is about
(`job:b-7f3a2c:window-3-done`); enqueueing the same key again changes nothing, so a restarted monitor
that re-decides to post something does not post it twice. `bot.slack.poster.SlackPoster` drains the
table. The methods are sync (psycopg 3 pool); async callers use `asyncio.to_thread`.

Order. Each row belongs to a lane: a channel's top level, or one thread of it. A lane goes out strictly
in enqueue (id) order, so only the oldest pending row of a lane is ever due. A chat.update joins the lane
of the message it edits, so edits land after that message and in the order they were made. A reply
may name its parent by `thread_key` (the parent's dedupe key) before the parent has a ts; it is not due
until the parent is sent, and is failed if the parent failed. An edit may name its message by `ts_key`
in the payload in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "files_upload_v2")
# files_upload_v2 (slack_sdk's helper: three Web API calls) puts a file in a channel or thread: its bytes
# base64 in the payload as `content_b64`, with `filename` and `title`. It joins its thread's lane, so it
# lands after what was queued there before.


@dataclass(frozen=True)
class OutboxItem:
    """A due row, with the ts its thread parent or edit target got resolved."""

    id: int
    key: str
    method: str
    channel: str | None
    thread_ts: str | None
    payload: dict[str, Any]
    lane: str
    attempts: int
    rate_limited: int
    blocked: str | None = None  # why it can never be sent (its parent or target failed); None: send it

    def call_args(self) -> dict[str, Any]:
        """The Web API arguments: the payload with the channel, thread and resolved ts filled in."""
        args = {k: v for k, v in self.payload.items() if k != "ts_key"}
        if self.channel is not None:
            args["channel"] = self.channel
        if self.thread_ts is not None and self.method != "chat.update":
            args["thread_ts"] = self.thread_ts
        return args


@dataclass(frozen=True)
class OutboxEntry:
    """One row as stored, for inspection."""

    id: int
    key: str
    method: str
    channel: str | None
    state: str
    attempts: int
    rate_limited: int
    last_error: str | None
    ts: str | None
    result: dict[str, Any] | None


_DUE = """
WITH heads AS (
    SELECT DISTINCT ON (lane) id, dedupe_key, method, channel, thread_ts, thread_key, ts_key, payload, lane,
           attempts, rate_limited, next_attempt_at
    FROM shepherd.outbox WHERE state = 'pending' ORDER BY lane, id
), ready AS (
    SELECT h.*, p.state AS parent_state, p.ts AS parent_ts, t.state AS target_state, t.ts AS target_ts,
           t.channel AS target_channel
    FROM heads h
    LEFT JOIN shepherd.outbox p ON p.dedupe_key = h.thread_key
    LEFT JOIN shepherd.outbox t ON t.dedupe_key = h.ts_key
    WHERE h.next_attempt_at <= COALESCE(%(now)s::timestamptz, now())
      AND p.state IS DISTINCT FROM 'pending' AND t.state IS DISTINCT FROM 'pending'
)
SELECT id, dedupe_key, method, channel, thread_ts, thread_key, ts_key, payload, lane, attempts, rate_limited,
       parent_state, parent_ts, target_state, target_ts, target_channel
FROM ready
ORDER BY row_number() OVER (PARTITION BY COALESCE(channel, target_channel) ORDER BY id), id
LIMIT %(limit)s
"""


class Outbox:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def enqueue(self, key: str, method: str, payload: dict[str, Any], *, channel: str | None,
                thread_ts: str | None = None, thread_key: str | None = None) -> int:
        """Queue one call; returns its id. A key already queued (in any state) changes nothing.

        chat.update takes the message to edit as `ts` or `ts_key` (its dedupe key) in the payload.
        ValueError for an unsupported method or a `thread_key` / `ts_key` that was never enqueued.
        """
        if method not in METHODS:
            raise ValueError(f"the outbox does not send {method}: only {', '.join(METHODS)}")
        ts_key = payload.get("ts_key") if method == "chat.update" else None
        if method == "chat.update" and not (payload.get("ts") or ts_key):
            raise ValueError("chat.update needs the message to edit: ts or ts_key in the payload")
        if method != "chat.update" and not channel:
            raise ValueError(f"{method} needs a channel")
        with self.pool.connection() as conn, conn.transaction():
            found = conn.execute("SELECT id FROM shepherd.outbox WHERE dedupe_key = %s", (key,)).fetchone()
            if found is not None:
                return int(found[0])
            if ts_key is not None:
                target = _row(conn, "dedupe_key = %s", (ts_key,))
                if target is None:
                    raise ValueError(f"chat.update names ts_key {ts_key!r}, which was never enqueued")
                channel, lane = target[1], target[2]
            elif method == "chat.update":
                assert channel is not None
                target = _row(conn, "channel = %s AND ts = %s AND method = 'chat.postMessage'",
                              (channel, str(payload["ts"])))
                lane = target[2] if target is not None else channel
            else:
                assert channel is not None
                lane = _lane(conn, channel, thread_ts, thread_key)
            row = conn.execute(
                "INSERT INTO shepherd.outbox"
                " (dedupe_key, channel, thread_ts, thread_key, ts_key, method, payload, lane)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                (key, channel, thread_ts, thread_key, ts_key, method, Jsonb(payload), lane),
            ).fetchone()
            if row is None:  # another process enqueued the same key meanwhile
                row = conn.execute("SELECT id FROM shepherd.outbox WHERE dedupe_key = %s", (key,)).fetchone()
            assert row is not None
            return int(row[0])

    def due(self, limit: int = 500, now: datetime | None = None) -> list[OutboxItem]:
        """The oldest pending row of each lane that may go now, each channel's oldest first.

        A reply whose parent, or an edit whose target, is still pending is not due; one whose parent or
        target failed (or is gone) is returned with `blocked` set, for the poster to fail.
        """
        with self.pool.connection() as conn:
            rows = conn.execute(_DUE, {"now": now, "limit": limit}).fetchall()
        items: list[OutboxItem] = []
        for (id_, key, method, channel, thread_ts, thread_key, ts_key, payload, lane, attempts, rate_limited,
             parent_state, parent_ts, target_state, target_ts, target_channel) in rows:
            blocked = None
            if thread_key is not None and thread_ts is None:
                if parent_state == "sent" and parent_ts:
                    thread_ts = parent_ts
                else:
                    blocked = f"thread parent {thread_key} was not sent ({parent_state or 'not in the outbox'})"
            payload = dict(payload)
            if ts_key is not None and "ts" not in payload:
                if target_state == "sent" and target_ts:
                    payload["ts"] = target_ts
                else:
                    blocked = f"message to edit {ts_key} was not sent ({target_state or 'not in the outbox'})"
            items.append(OutboxItem(int(id_), key, method, channel or target_channel, thread_ts, payload, lane,
                                    int(attempts), int(rate_limited), blocked))
        return items

    def mark_sent(self, id: int, result: dict[str, Any]) -> None:
        ts = result.get("ts") or result.get("message_ts")
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE shepherd.outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1, result = %s,"
                " ts = %s WHERE id = %s",
                (Jsonb(result), None if ts is None else str(ts), id),
            )

    def retry_later(self, id: int, at: datetime, error: str, *, rate_limited: bool = False) -> None:
        """Try again at `at`; a 429 (`rate_limited`) is counted apart from failed attempts."""
        counter = "rate_limited" if rate_limited else "attempts"
        with self.pool.connection() as conn:
            conn.execute(
                f"UPDATE shepherd.outbox SET {counter} = {counter} + 1, next_attempt_at = %s, last_error = %s"
                " WHERE id = %s AND state = 'pending'",
                (at, error, id),
            )

    def mark_failed(self, id: int, error: str, *, attempted: bool = True) -> None:
        """Give up on the row; `attempted=False` when no call was made for it this time."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE shepherd.outbox SET state = 'failed', last_error = %s, attempts = attempts + %s"
                " WHERE id = %s AND state = 'pending'",
                (error, 1 if attempted else 0, id),
            )

    def sent_ts(self, key: str) -> str | None:
        """The ts Slack gave the message sent under `key` (to edit it or reply under it); None until sent."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT ts FROM shepherd.outbox WHERE dedupe_key = %s AND state = 'sent'", (key,)
            ).fetchone()
        return None if row is None else row[0]

    def pending_count(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM shepherd.outbox WHERE state = 'pending'").fetchone()
        return int(row[0]) if row else 0

    def entry(self, key: str) -> OutboxEntry | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT id, dedupe_key, method, channel, state, attempts, rate_limited, last_error, ts, result"
                " FROM shepherd.outbox WHERE dedupe_key = %s",
                (key,),
            ).fetchone()
        return None if row is None else OutboxEntry(*row)


def _row(conn: Connection[Any], where: str, params: tuple[Any, ...]) -> tuple[str, str | None, str, bool] | None:
    """(dedupe_key, channel, lane, is_reply) of the outbox row matching `where`."""
    row = conn.execute(
        "SELECT dedupe_key, channel, lane, (thread_key IS NOT NULL OR thread_ts IS NOT NULL)"
        f" FROM shepherd.outbox WHERE {where} ORDER BY id LIMIT 1",
        params,
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], bool(row[3]))


def _lane(conn: Connection[Any], channel: str, thread_ts: str | None, thread_key: str | None) -> str:
    """A post's lane: the channel's top level, or its thread, named by the parent's key when it is ours."""
    if thread_key is None and thread_ts is None:
        return channel
    if thread_key is not None:
        parent = _row(conn, "dedupe_key = %s", (thread_key,))
        if parent is None:
            raise ValueError(f"thread_key {thread_key!r} was never enqueued")
    else:
        parent = _row(conn, "channel = %s AND ts = %s AND method = 'chat.postMessage'", (channel, thread_ts))
        if parent is None:
            return f"{channel}/ts:{thread_ts}"
    key, parent_channel, parent_lane, is_reply = parent
    # a reply under a reply is in the root's thread, as Slack does it
    return parent_lane if is_reply else f"{parent_channel or channel}/{key}"
