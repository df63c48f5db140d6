"""The stand-in's controls for tests and the console: Socket Mode connection events and people's settings.

A mixin of `SlackEmulator` (bot/standins/slack/emulator.py), which provides `_http` (its background
server), `_ws` (the workspace) and `socket` (bot/standins/slack/socket_mode.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.standins.slack.loop import BackgroundServer
    from bot.standins.slack.socket_mode import SocketModeServer
    from bot.standins.slack.state import Workspace


class Controls:
    _http: BackgroundServer
    _ws: Workspace
    socket: SocketModeServer

    # --- Socket Mode (bot/standins/slack/socket_mode.py) -------------------------------------
    async def socket_disconnect(self, reason: str = "refresh_requested", grace_s: float = 1.0) -> int:
        """Slack's `disconnect` message on every open connection; how many got it."""
        return await self._http.call(self.socket.disconnect(reason, grace_s))

    async def socket_drop(self, *, abrupt: bool = False) -> int:
        """Every connection closed unannounced (`abrupt`: without a close frame); how many were open."""
        return await self._http.call(self.socket.drop(abrupt=abrupt))

    async def socket_lose_acks(self, count: int = 1) -> None:
        """The next `count` acknowledgements are lost on the way: those envelopes are delivered again."""
        async def lose() -> None:
            self.socket.lose_acks(count)
        await self._http.call(lose())

    async def wait_connected(self, connections: int = 1, timeout: float = 10.0) -> int:
        """Wait until the app has `connections` Socket Mode connections open; how many it has."""
        deadline = time.monotonic() + timeout
        while (count := self.socket.open_connections()) < connections:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{count} Socket Mode connection(s) open after {timeout} s, wanted {connections}")
            await asyncio.sleep(0.02)
        return count

    # --- people's settings -------------------------------------------------------------------
    def deactivate(self, user: str) -> None:
        """The person is deactivated: conversations.open and posts to their DM answer `user_disabled`."""
        with self._ws.lock:
            found = self._ws.user(user)
            found.deleted = True
            self._ws.saved_user(found)

    def restrict_dms(self, user: str) -> None:
        """A workspace preference keeps the app from posting to them (`restricted_action`)."""
        with self._ws.lock:
            found = self._ws.user(user)
            found.dms_restricted = True
            self._ws.saved_user(found)

