"""The records of the Slack stand-in (bot/standins/slack/emulator.py): messages, views, calls, deliveries."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal


class SlackError(Exception):
    """A Web API error answered as `{"ok": false, "error": error}` (plus `response_metadata.messages`)."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


@dataclass
class Message:
    channel: str
    ts: str
    user: str  # the bot's user id for the app's posts
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None  # set on replies (and on a thread's root once it has replies)
    reply_count: int = 0
    edits: int = 0
    ephemeral_to: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    bot_id: str | None = None  # set on the app's posts

    def buttons(self) -> list[tuple[int, str, str, str, str]]:
        """`(index, text, action_id, value, block_id)` of every button, numbered from 1 in block order."""
        found: list[tuple[int, str, str, str, str]] = []
        for block in self.blocks:
            elements = list(block.get("elements") or [])
            if block.get("type") == "section" and isinstance(block.get("accessory"), dict):
                elements = [block["accessory"]]
            for element in elements:
                if isinstance(element, dict) and element.get("type") == "button":
                    text = (element.get("text") or {}).get("text", "")
                    found.append((len(found) + 1, str(text), str(element.get("action_id", "")),
                                  str(element.get("value", "")), str(block.get("block_id", ""))))
        return found

    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def as_slack(self, team_id: str, app_id: str) -> dict[str, Any]:
        """The message as Slack's API shows it (chat.postMessage's `message`, an interaction's `message`)."""
        shown: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts,
                                 "team": team_id, "blocks": self.blocks}
        if self.bot_id:
            shown.update(bot_id=self.bot_id, app_id=app_id)
        if self.thread_ts:
            shown["thread_ts"] = self.thread_ts
        if self.reply_count:
            shown["reply_count"] = self.reply_count
        if self.files:
            shown["files"] = self.files
            shown["upload"] = False
        if self.edits:
            shown["edited"] = {"user": self.user, "ts": self.ts}
        return shown


@dataclass
class View:
    id: str
    user: str
    view: dict[str, Any]  # as passed to views.open/update/push (title, blocks, callback_id, ...)
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str = ""
    closed: bool = False

    def as_slack(self, team_id: str, app_id: str, bot_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        v = self.view
        return {"id": self.id, "team_id": team_id, "type": v.get("type", "modal"), "blocks": v.get("blocks", []),
                "private_metadata": v.get("private_metadata", ""), "callback_id": v.get("callback_id", ""),
                "state": {"values": values or {}}, "hash": self.hash, "title": v.get("title"),
                "clear_on_close": bool(v.get("clear_on_close")), "notify_on_close": bool(v.get("notify_on_close")),
                "close": v.get("close"), "submit": v.get("submit"), "previous_view_id": self.previous_view_id,
                "root_view_id": self.root_view_id, "app_id": app_id, "external_id": self.external_id,
                "app_installed_team_id": team_id, "bot_id": bot_id}


@dataclass
class Call:
    """One Web API call (or response_url POST, as method "response_url") as the stand-in answered it."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    http_status: int
    at: float = field(default_factory=time.time)


@dataclass
class Change:
    kind: Literal["new", "updated", "deleted", "ephemeral"]
    message: Message


@dataclass
class Delivery:
    """The app's answer to a delivered request (its ack): over HTTP, or over Socket Mode (status 200 and the
    ack's payload as JSON; 504 when no attempt was acknowledged)."""

    status: int
    body: str
    elapsed_s: float
    attempts: int = 1  # Socket Mode: envelopes sent (1 + redeliveries)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str = "UTC"
    is_bot: bool = False
    deleted: bool = False  # deactivated: nobody can open a DM with them
    dms_restricted: bool = False  # a workspace preference keeps the app from posting to them


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)  # empty: everyone may read it


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str]


class TsClock:
    """Unique, strictly increasing Slack timestamps ("1700000000.000100") that follow the wall clock."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, int(time.time() * 1_000_000))
            return f"{self._last // 1_000_000}.{self._last % 1_000_000:06d}"

    def advance_to(self, micros: int) -> None:
        """Never hand out a timestamp at or before `micros` (the latest of a reloaded workspace)."""
        with self._lock:
            self._last = max(self._last, micros)


class Ids:
    """Slack-looking ids: F0000001 (files), V0000001 (views), trigger ids."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self, prefix: str) -> str:
        return f"{prefix}{self._next():07d}"

    def _next(self) -> int:
        with self._lock:
            self._last += 1
            return self._last

    def advance_past(self, known: str) -> None:
        """Never hand out an id numbered at or below `known`'s (an id of a reloaded workspace, "F0000012")."""
        digits = known.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if digits.isdigit():
            with self._lock:
                self._last = max(self._last, int(digits))

    def trigger(self) -> str:
        return f"{int(time.time())}.{self._next()}.emulator{self._next():08x}"
