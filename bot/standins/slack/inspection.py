"""The stand-in's inspection for tests and the console: people, channels, messages, views and calls, as copies.

A mixin of `SlackEmulator` (bot/standins/slack/emulator.py), which provides `_ws` (the workspace), `_views`,
`_backend` (the Web API's state, uploads included) and `_server` (the HTTP server and its call record).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from bot.standins.slack.model import Call, Message, SlackError, View

if TYPE_CHECKING:
    from bot.standins.slack.api import Backend
    from bot.standins.slack.http import ApiServer
    from bot.standins.slack.state import Workspace
    from bot.standins.slack.views import Views


class Inspection:
    _ws: Workspace
    _views: Views
    _backend: Backend
    _server: ApiServer

    # --- people and channels ------------------------------------------------------------------------
    def users(self) -> dict[str, str]:
        """User id -> name, the app's bot user included."""
        with self._ws.lock:
            return {u.id: u.name for u in self._ws.users.values()}

    def channels(self) -> dict[str, str]:
        """Channel id -> name."""
        with self._ws.lock:
            return {c.id: c.name for c in self._ws.channels.values()}

    def _channel_id(self, channel: str) -> str:
        with self._ws.lock:
            if channel in self._ws.channels:
                return channel
            return next((c.id for c in self._ws.channels.values() if c.name == channel.lstrip("#")), channel)

    def messages(self, channel: str) -> list[Message]:
        return copy.deepcopy([m for m in self._ws.live(self._channel_id(channel)) if not m.is_reply()])

    def thread(self, channel: str, ts: str) -> list[Message]:
        replies = [m for m in self._ws.live(self._channel_id(channel)) if m.is_reply() and m.thread_ts == ts]
        return copy.deepcopy(replies)

    def message(self, channel: str, ts: str) -> Message:
        try:
            return copy.deepcopy(self._ws.find(self._channel_id(channel), ts))
        except SlackError:
            raise KeyError(f"no message {ts} in {channel}") from None

    def ephemerals(self, user: str, channel: str | None = None) -> list[Message]:
        found = self._ws.user_by_name(user)
        uid = found.id if found else user
        where = self._channel_id(channel) if channel else None
        return copy.deepcopy([m for m in self._ws.live_ephemerals()
                              if m.ephemeral_to == uid and where in (None, m.channel)])

    def responses(self) -> list[dict[str, Any]]:
        with self._ws.lock:
            return copy.deepcopy(self._ws.response_log)

    def view(self, view_id: str) -> View:
        return copy.deepcopy(self._views.get(view_id))

    def home(self, user: str) -> View | None:
        """The Home tab last published for `user` (views.publish), or None."""
        with self._ws.lock:
            found = self._views.homes.get(user)
            return copy.deepcopy(found) if found is not None else None

    def home_publishes(self, user: str) -> int:
        with self._ws.lock:
            return self._views.publishes.get(user, 0)

    def dm(self, user: str) -> list[Message]:
        """The app's direct messages with `user` (top level, oldest first)."""
        with self._ws.lock:
            dm = next((c.id for c in self._ws.channels.values() if c.id.startswith("D") and user in c.members), None)
        return self.messages(dm) if dm else []

    def open_views(self, user: str) -> list[View]:
        with self._ws.lock:
            return copy.deepcopy([v for v in self._views.views.values() if v.user == user and not v.closed])

    def file_bytes(self, file_id: str) -> bytes:
        upload = self._backend.uploads.get(file_id)
        if upload is None or upload.data is None:
            raise KeyError(f"no uploaded file {file_id}")
        return upload.data

    @property
    def calls(self) -> list[Call]:
        return self._server.record.calls

    @property
    def contract_violations(self) -> list[str]:
        return self._server.record.violations

    @property
    def contract_unknown(self) -> list[str]:
        return self._server.record.unknown
