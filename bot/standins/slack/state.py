"""The in-memory workspace of the Slack stand-in: people, channels, messages, ephemerals, response_urls.

Every method takes the workspace lock; the ones that change messages return the `Change`s to send to
subscribers, which the caller sends after the lock is released (`Workspace.notify`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.standins.slack.block_checks import MAX_TEXT, check_blocks, decode_blocks, with_ids
from bot.standins.slack.model import Change, Channel, Ids, Message, SlackError, TsClock, User, Usergroup
from bot.standins.slack.store import WorkspaceStore

log = logging.getLogger(__name__)

RESPONSE_URL_USES = 5  # Slack's limit per response_url ...
RESPONSE_URL_TTL_S = 30 * 60  # ... within 30 minutes


@dataclass
class ResponseTarget:
    """What a response_url answers: the person who acted, where, and the message they acted on."""

    user: str
    channel: str
    original: tuple[str, str] | None  # (channel, ts) of the message clicked, None for a slash command
    created: float = field(default_factory=time.monotonic)
    uses: int = 0


class Workspace:
    def __init__(self, team_id: str, bot_user_id: str, bot_id: str, app_id: str) -> None:
        self.lock = threading.RLock()
        self.team_id, self.bot_user_id, self.bot_id, self.app_id = team_id, bot_user_id, bot_id, app_id
        self.domain = "shepherd-emulator"
        self.users: dict[str, User] = {bot_user_id: User(bot_user_id, "shepherd", "Shepherd", is_bot=True)}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.posts: dict[str, list[Message]] = {}  # channel -> messages and replies, in ts order
        self.private: list[Message] = []  # ephemerals, in ts order
        self.deleted: set[tuple[str, str]] = set()
        self.response_targets: dict[str, ResponseTarget] = {}
        self.response_log: list[dict[str, Any]] = []
        self.clock = TsClock()
        self.ids = Ids()
        self.subscribers: list[Callable[[Change], None]] = []
        self.store: WorkspaceStore | None = None  # set: every change is also written to disk

    def keep_in(self, store: WorkspaceStore) -> None:
        """Load what `store` holds into this workspace, then write every change through to it."""
        store.load(self)
        with self.lock:
            self.store = store
            for user in self.users.values():
                store.save_user(user)

    def saved_user(self, user: User) -> None:
        with self.lock:
            self.users[user.id] = user
            if self.store is not None:
                self.store.save_user(user)

    def saved_channel(self, channel: Channel) -> Channel:
        with self.lock:
            self.channels[channel.id] = channel
            if self.store is not None:
                self.store.save_channel(channel)
            return channel

    # --- people and places -------------------------------------------------------------------
    def user(self, user_id: str) -> User:
        with self.lock:
            found = self.users.get(user_id)
            if found is None:
                raise SlackError("user_not_found")
            return found

    def user_by_name(self, name_or_id: str) -> User | None:
        key = name_or_id.lstrip("@")
        with self.lock:
            return self.users.get(key) or next((u for u in self.users.values() if u.name == key), None)

    def channel(self, ref: str) -> Channel:
        """A channel by id, `#name` or name; a user id opens (or finds) the direct message with them."""
        with self.lock:
            if ref in self.channels:
                return self.channels[ref]
            name = ref.lstrip("#")
            for ch in self.channels.values():
                if ch.name == name:
                    return ch
            if ref in self.users:
                dm_id = "D" + ref.removeprefix("U")
                return self.channels.get(dm_id) or self.saved_channel(
                    Channel(dm_id, f"dm-{self.users[ref].name}", {ref, self.bot_user_id}))
            raise SlackError("channel_not_found")

    # --- messages ----------------------------------------------------------------------------
    def _content(self, text: Any, raw_blocks: Any, *, need_text: bool = True) -> tuple[str, list[dict[str, Any]]]:
        blocks = decode_blocks(raw_blocks)
        if blocks is None:
            raise SlackError("invalid_blocks_format", ["[ERROR] blocks must be a JSON array of objects"])
        problems = check_blocks(blocks)
        if problems:
            raise SlackError("invalid_blocks", problems)
        text = "" if text is None else str(text)
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        if need_text and not text and not blocks:
            raise SlackError("no_text")
        return text, with_ids(blocks)

    def post(self, channel: str, text: Any, blocks: Any, *, thread_ts: str | None = None, user: str | None = None,
             files: list[dict[str, Any]] | None = None) -> tuple[Message, list[Change]]:
        body, stored = self._content(text, blocks, need_text=not files)
        with self.lock:
            ch = self.channel(channel)
            root = None
            if thread_ts:
                try:
                    root = self.find(ch.id, str(thread_ts), ephemeral=False)
                except SlackError:
                    raise SlackError("thread_not_found") from None
                if root.is_reply():
                    root = self.find(ch.id, str(root.thread_ts), ephemeral=False)
            msg = Message(ch.id, self.clock.next(), user or self.bot_user_id, body, stored, files=files or [],
                          thread_ts=root.ts if root else None, bot_id=self.bot_id if user is None else None)
            self.posts.setdefault(ch.id, []).append(msg)
            if root is not None:
                root.reply_count += 1
                root.thread_ts = root.ts
            if self.store is not None:
                self.store.save_messages(msg, *([root] if root is not None else []))
            return msg, [Change("new", copy.deepcopy(msg))]

    def update(self, channel: str, ts: str, text: Any, blocks: Any, *, ephemeral: bool | None = False,
               retain: bool = True) -> tuple[Message, list[Change]]:
        """chat.update (`retain`: text or blocks left out keep their old value, as Slack does) or a replacement."""
        body, stored = self._content(text, blocks)
        with self.lock:
            msg = self.find(self.channel(channel).id, ts, ephemeral=ephemeral)
            if msg.user != self.bot_user_id:
                raise SlackError("cant_update_message")
            msg.text = msg.text if retain and text is None else body
            msg.blocks = msg.blocks if retain and blocks is None else stored
            msg.edits += 1
            if self.store is not None:
                self.store.save_messages(msg)
            return msg, [Change("updated", copy.deepcopy(msg))]

    def delete(self, channel: str, ts: str, *, ephemeral: bool | None = False) -> list[Change]:
        with self.lock:
            ch = self.channel(channel)
            msg = self.find(ch.id, ts, ephemeral=ephemeral)
            if msg.user != self.bot_user_id:
                raise SlackError("cant_delete_message")
            self.deleted.add((ch.id, ts))
            root = None
            if msg.is_reply():
                root = self.find(ch.id, str(msg.thread_ts), ephemeral=False)
                root.reply_count = max(0, root.reply_count - 1)
            if self.store is not None:
                self.store.delete_message(ch.id, ts, root)
            return [Change("deleted", copy.deepcopy(msg))]

    def ephemeral(self, channel: str, user: str, text: Any, blocks: Any,
                  thread_ts: str | None = None) -> tuple[Message, list[Change]]:
        body, stored = self._content(text, blocks)
        with self.lock:
            ch = self.channel(channel)
            self.user(user)
            if ch.members and user not in ch.members:
                raise SlackError("user_not_in_channel")
            msg = Message(ch.id, self.clock.next(), self.bot_user_id, body, stored, thread_ts=thread_ts,
                          ephemeral_to=user, bot_id=self.bot_id)
            self.private.append(msg)
            if self.store is not None:
                self.store.save_messages(msg)
            return msg, [Change("ephemeral", copy.deepcopy(msg))]

    def find(self, channel: str, ts: str, *, ephemeral: bool | None = None) -> Message:
        """The live message at (channel, ts); `ephemeral` None looks in both kinds. Raises message_not_found."""
        with self.lock:
            if (channel, ts) not in self.deleted:
                pools = [self.posts.get(channel, []), self.private]
                if ephemeral is not None:
                    pools = [pools[1] if ephemeral else pools[0]]
                for pool in pools:
                    for msg in pool:
                        if msg.ts == ts and msg.channel == channel:
                            return msg
            raise SlackError("message_not_found")

    def live(self, channel: str) -> list[Message]:
        with self.lock:
            return [m for m in self.posts.get(channel, []) if (channel, m.ts) not in self.deleted]

    def live_ephemerals(self) -> list[Message]:
        with self.lock:
            return [m for m in self.private if (m.channel, m.ts) not in self.deleted]

    def permalink(self, channel: str, ts: str) -> str:
        msg = self.find(self.channel(channel).id, ts, ephemeral=False)
        link = f"https://{self.domain}.slack.com/archives/{msg.channel}/p{ts.replace('.', '')}"
        return link + (f"?thread_ts={msg.thread_ts}&cid={msg.channel}" if msg.is_reply() else "")

    # --- response_url ------------------------------------------------------------------------
    def new_response_target(self, user: str, channel: str, original: tuple[str, str] | None) -> str:
        token = self.ids.next("R") + self.clock.next().replace(".", "")
        with self.lock:
            target = self.response_targets[token] = ResponseTarget(user, channel, original)
            if self.store is not None:
                self.store.save_response_target(token, target)
        return token

    def respond(self, token: str, payload: Any) -> tuple[int, str, list[Change]]:
        """A POST to a response_url: Slack's (status, body) and the changes it made."""
        with self.lock:
            self.response_log.append(payload if isinstance(payload, dict) else {"invalid_payload": payload})
            target = self.response_targets.get(token)
            if target is None:
                return 404, "invalid_url", []
            if time.monotonic() - target.created > RESPONSE_URL_TTL_S:
                return 404, "expired_url", []
            if target.uses >= RESPONSE_URL_USES:
                return 404, "used_url", []
            if not isinstance(payload, dict):
                return 400, "invalid_payload", []
            target.uses += 1
            if self.store is not None:
                self.store.save_response_target(token, target)
            try:
                changes = self._apply_response(target, payload)
            except SlackError as err:
                return 400, err.error, []
            return 200, "ok", changes

    def _apply_response(self, target: ResponseTarget, payload: dict[str, Any]) -> list[Change]:
        text, blocks = payload.get("text"), payload.get("blocks")
        original = target.original
        if original is not None and _true(payload.get("delete_original")):
            return self.delete(original[0], original[1], ephemeral=None)
        if original is not None and _true(payload.get("replace_original")):
            return self.update(original[0], original[1], text, blocks, ephemeral=None, retain=False)[1]
        if payload.get("response_type") == "in_channel":
            return self.post(target.channel, text, blocks, thread_ts=payload.get("thread_ts"))[1]
        return self.ephemeral(target.channel, target.user, text, blocks, payload.get("thread_ts"))[1]

    # --- groups and subscribers --------------------------------------------------------------
    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        with self.lock:
            group = self.usergroups[group_id] = Usergroup(group_id, handle.lstrip("@"), users)
            if self.store is not None:
                self.store.save_usergroup(group)

    def notify(self, changes: list[Change]) -> None:
        with self.lock:
            subscribers = list(self.subscribers)
        for change in changes:
            for callback in subscribers:
                try:
                    callback(change)
                except Exception:  # a subscriber's bug must not break the Web API answer
                    log.exception("emulator subscriber failed on %s", change.kind)


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
