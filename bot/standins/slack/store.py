"""The Slack stand-in's workspace on disk: people, channels, messages and response_urls in SQLite.

`shepherd dev` keeps its stand-in in `<data dir>/slack-standin.sqlite`, so a restart on the same data
finds the channels and the messages the app posted (the status messages it goes on editing, the
buttons people click) where they were. Every change is written through as it happens, one transaction
each (WAL, synchronous=NORMAL: a killed process loses nothing it answered). Views, uploads' bytes and
the call log stay in memory: a restarted app opens its modals again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.standins.slack.model import Channel, Message, User, Usergroup

if TYPE_CHECKING:
    from bot.standins.slack.state import ResponseTarget, Workspace

FILE_NAME = "slack-standin.sqlite"

SCHEMA = """
create table if not exists users (id text primary key, doc text not null);
create table if not exists channels (id text primary key, doc text not null);
create table if not exists usergroups (id text primary key, doc text not null);
create table if not exists messages (seq integer primary key autoincrement, channel text not null, ts text not null,
    ephemeral integer not null, deleted integer not null default 0, doc text not null, unique (channel, ts));
create table if not exists response_targets (token text primary key, doc text not null);
"""


class WorkspaceStore:
    """Write-through persistence of a `Workspace`; `load` fills a fresh one from the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writes ------------------------------------------------------------------------------
    def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._lock:
            self._db.execute("begin")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def save_user(self, user: User) -> None:
        self._write([("insert or replace into users values (?, ?)", (user.id, json.dumps(asdict(user))))])

    def save_channel(self, channel: Channel) -> None:
        doc = {**asdict(channel), "members": sorted(channel.members)}
        self._write([("insert or replace into channels values (?, ?)", (channel.id, json.dumps(doc)))])

    def save_usergroup(self, group: Usergroup) -> None:
        self._write([("insert or replace into usergroups values (?, ?)", (group.id, json.dumps(asdict(group))))])

    def save_messages(self, *messages: Message) -> None:
        """New or changed messages (a reply and its thread's root together), keeping their first order."""
        self._write([(
            "insert into messages (channel, ts, ephemeral, doc) values (?, ?, ?, ?)"
            " on conflict (channel, ts) do update set doc = excluded.doc",
            (m.channel, m.ts, int(m.ephemeral_to is not None), json.dumps(asdict(m))),
        ) for m in messages])

    def delete_message(self, channel: str, ts: str, root: Message | None) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("update messages set deleted = 1 where channel = ? and ts = ?", (channel, ts))]
        if root is not None:
            statements.append(("update messages set doc = ? where channel = ? and ts = ?",
                               (json.dumps(asdict(root)), root.channel, root.ts)))
        self._write(statements)

    def save_response_target(self, token: str, target: ResponseTarget) -> None:
        # `created` is monotonic: stored as wall time so the 30-minute limit holds across a restart.
        doc = {**asdict(target), "created": time.time() - (time.monotonic() - target.created)}
        self._write([("insert or replace into response_targets values (?, ?)", (token, json.dumps(doc)))])

    # --- read back ---------------------------------------------------------------------------
    def load(self, ws: Workspace) -> None:
        from bot.standins.slack.state import ResponseTarget

        with self._lock:
            users = self._db.execute("select doc from users").fetchall()
            channels = self._db.execute("select doc from channels").fetchall()
            groups = self._db.execute("select doc from usergroups").fetchall()
            messages = self._db.execute("select ephemeral, deleted, doc from messages order by seq").fetchall()
            targets = self._db.execute("select token, doc from response_targets").fetchall()
        with ws.lock:
            for (doc,) in users:
                user = User(**json.loads(doc))
                ws.users[user.id] = user
            for (doc,) in channels:
                raw = json.loads(doc)
                ws.channels[raw["id"]] = Channel(raw["id"], raw["name"], set(raw["members"]))
            for (doc,) in groups:
                group = Usergroup(**json.loads(doc))
                ws.usergroups[group.id] = group
            latest = 0
            for ephemeral, deleted, doc in messages:
                msg = Message(**json.loads(doc))
                (ws.private if ephemeral else ws.posts.setdefault(msg.channel, [])).append(msg)
                if deleted:
                    ws.deleted.add((msg.channel, msg.ts))
                latest = max(latest, _micros(msg.ts))
                for upload in msg.files:
                    ws.ids.advance_past(str(upload.get("id", "")))
            ws.clock.advance_to(latest)
            for token, doc in targets:
                raw = json.loads(doc)
                raw["original"] = tuple(raw["original"]) if raw["original"] else None
                raw["created"] = time.monotonic() - (time.time() - raw["created"])
                ws.response_targets[token] = ResponseTarget(**raw)


def _micros(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    try:
        return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")[:6])
    except ValueError:
        return 0
