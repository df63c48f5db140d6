"""Slack's Socket Mode in the stand-in: `apps.connections.open` and the WebSocket the app connects to.

The protocol, as Slack's Socket Mode guide describes it (slack_sdk's `socket_mode` clients speak it):
- `apps.connections.open`, called with the app-level token (xapp-...), answers a one-time URL,
  here `ws://127.0.0.1:PORT/link/?ticket=...&app_id=...` (local: no TLS; slack_sdk's aiohttp client
  connects to it as it is, with no setting: aiohttp uses TLS for `wss://` only).
- On connecting, the app first receives `{"type": "hello", "num_connections", "debug_info",
  "connection_info": {"app_id"}}`.
- Every delivery is an envelope `{"envelope_id", "type": "slash_commands"|"interactive"|"events_api",
  "payload", "accepts_response_payload"}`; the app acknowledges it by sending `{"envelope_id"}` back,
  with a `payload` where `accepts_response_payload` is true (a slash command's reply, a view
  submission's `response_action`).
- An envelope not acknowledged within `ack_timeout_s` (Slack's 3 s), or whose connection closed
  first, is sent again with `retry_attempt` (1, 2, ...) and `retry_reason` "timeout", on whichever
  connection is open then, at most `max_retries` times; the first acknowledgement of any attempt counts.
- `disconnect(reason)` sends `{"type": "disconnect", "reason", "debug_info"}`: "warning" announces a
  refresh, "refresh_requested" asks the app to reconnect now (the old connection is closed after
  `grace_s`, as Slack keeps it a little while). `drop()` closes every connection at once, unannounced.

Faults for tests: `lose_acks(n)` ignores the next n acknowledgements as if lost on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.standins.slack.model import Delivery

ACK_TIMEOUT_S = 3.0
MAX_RETRIES = 3
CONNECT_WAIT_S = 10.0  # how long a delivery waits for the app to (re)connect before it counts as lost


@dataclass
class Connection:
    id: int
    ws: web.WebSocketResponse
    transport: Any = None  # asyncio transport under the WebSocket (cut by an abrupt drop)
    opened: float = field(default_factory=time.monotonic)
    closing: bool = False  # sent refresh_requested: takes nothing new


@dataclass
class Pending:
    envelope: dict[str, Any]
    acked: asyncio.Future[dict[str, Any]]
    attempts: int = 0


@dataclass
class SocketStats:
    connections_opened: int = 0
    hellos: int = 0
    envelopes_sent: int = 0  # every attempt
    redeliveries: int = 0
    acks: int = 0
    acks_lost: int = 0
    late_acks: int = 0  # acknowledgements of an envelope already acknowledged (by another attempt)
    unknown_acks: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)  # every frame sent, in order


class SocketModeServer:
    def __init__(self, app_id: str, *, ack_timeout_s: float = ACK_TIMEOUT_S, max_retries: int = MAX_RETRIES,
                 connect_wait_s: float = CONNECT_WAIT_S) -> None:
        self.app_id = app_id
        self.ack_timeout_s = ack_timeout_s
        self.max_retries = max_retries
        self.connect_wait_s = connect_wait_s
        self.base_url = ""  # http://127.0.0.1:PORT/ once serving
        self.stats = SocketStats()
        self._tickets: set[str] = set()
        self._connections: dict[int, Connection] = {}
        self._pending: dict[str, Pending] = {}
        self._next_id = 0
        self._changed: asyncio.Condition | None = None  # created on the server's loop
        self._lose = 0

    # --- apps.connections.open -------------------------------------------------------------------
    def open_url(self) -> str:
        ticket = secrets.token_urlsafe(12)
        self._tickets.add(ticket)
        return f"{self.base_url.replace('http://', 'ws://', 1)}link/?ticket={ticket}&app_id={self.app_id}"

    def install(self, app: web.Application) -> None:
        app.router.add_get("/link/", self.link)

    # --- the WebSocket ---------------------------------------------------------------------------
    async def link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")  # used or never issued
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._next_id += 1
        conn = Connection(self._next_id, ws, request.transport)
        self._connections[conn.id] = conn
        self.stats.connections_opened += 1
        await self._send(conn, {"type": "hello", "num_connections": len(self._connections),
                                "debug_info": {"host": f"applink-emulator-{conn.id}", "build_number": 1,
                                               "approximate_connection_time": 18060},
                                "connection_info": {"app_id": self.app_id}})
        self.stats.hellos += 1
        await self._notify()
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._acknowledged(frame.data)
                elif frame.type == WSMsgType.ERROR:
                    break
        finally:
            self._connections.pop(conn.id, None)
            await self._notify()
        return ws

    def _acknowledged(self, raw: str) -> None:
        try:
            ack = json.loads(raw)
        except ValueError:
            return
        envelope_id = ack.get("envelope_id") if isinstance(ack, dict) else None
        if not envelope_id:
            return
        if self._lose > 0:
            self._lose -= 1
            self.stats.acks_lost += 1
            return
        pending = self._pending.get(str(envelope_id))
        if pending is None:
            self.stats.unknown_acks += 1
        elif pending.acked.done():
            self.stats.late_acks += 1
        else:
            self.stats.acks += 1
            pending.acked.set_result(ack)

    async def _send(self, conn: Connection, frame: dict[str, Any]) -> None:
        self.stats.log.append(frame)
        await conn.ws.send_str(json.dumps(frame))

    async def _notify(self) -> None:
        changed = self._condition()
        async with changed:
            changed.notify_all()

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _live(self, timeout: float) -> Connection | None:
        """The newest open connection that takes deliveries, waiting up to `timeout` for one."""
        changed = self._condition()
        deadline = time.monotonic() + timeout
        async with changed:
            while True:
                live = [c for c in self._connections.values() if not c.closing and not c.ws.closed]
                if live:
                    return max(live, key=lambda c: c.id)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)

    # --- deliveries ------------------------------------------------------------------------------
    async def deliver(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool) -> Delivery:
        """Send one envelope and wait for its acknowledgement, redelivering as Slack does.

        Answers the acknowledgement as a `Delivery`: status 200 with the ack's `payload` as JSON (empty
        when it has none), or 504 when no attempt was acknowledged (as Slack then gives up).
        """
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": accepts_response_payload}
        pending = Pending(envelope, asyncio.get_running_loop().create_future())
        self._pending[envelope_id] = pending
        began = time.monotonic()
        try:
            while pending.attempts <= self.max_retries:
                conn = await self._live(self.connect_wait_s)
                if conn is None:
                    break
                frame = dict(envelope)
                if pending.attempts:
                    frame.update(retry_attempt=pending.attempts, retry_reason="timeout")
                    self.stats.redeliveries += 1
                pending.attempts += 1
                self.stats.envelopes_sent += 1
                with contextlib.suppress(ConnectionError, RuntimeError):  # closed meanwhile: the timeout redelivers
                    await self._send(conn, frame)
                if await self._ack_or_close(pending, conn):
                    ack = pending.acked.result()
                    body = json.dumps(ack["payload"]) if ack.get("payload") is not None else ""
                    return Delivery(200, body, time.monotonic() - began, pending.attempts)
            return Delivery(504, f"envelope {envelope_id} not acknowledged after {pending.attempts} attempt(s)",
                            time.monotonic() - began, pending.attempts)
        finally:
            self._pending.pop(envelope_id, None)

    async def _ack_or_close(self, pending: Pending, conn: Connection) -> bool:
        """True once acknowledged; False after `ack_timeout_s` without one, or as soon as `conn` closes."""
        deadline = time.monotonic() + self.ack_timeout_s
        while not pending.acked.done():
            left = deadline - time.monotonic()
            if left <= 0 or conn.ws.closed:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pending.acked), min(left, 0.05))
        return True

    # --- connection events -----------------------------------------------------------------------
    async def disconnect(self, reason: str = "refresh_requested", grace_s: float = 1.0) -> int:
        """Send `disconnect` with `reason` on every open connection; how many got it."""
        conns = [c for c in self._connections.values() if not c.ws.closed]
        for conn in conns:
            if reason == "refresh_requested":
                conn.closing = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send(conn, {"type": "disconnect", "reason": reason,
                                        "debug_info": {"host": f"applink-emulator-{conn.id}"}})
        if reason == "refresh_requested":
            async def close_later() -> None:
                await asyncio.sleep(grace_s)
                for conn in conns:
                    await conn.ws.close()
            asyncio.get_running_loop().create_task(close_later())
        return len(conns)

    async def drop(self, *, abrupt: bool = False) -> int:
        """Close every connection at once, unannounced; how many were open. `abrupt`: no close frame
        either (the TCP connection is cut, as a network failure does), so the app notices only by its pings."""
        conns = list(self._connections.values())
        for conn in conns:
            if abrupt and conn.transport is not None:
                conn.transport.abort()
            else:
                await conn.ws.close(code=1001)
        return len(conns)

    def lose_acks(self, count: int = 1) -> None:
        self._lose += count

    def open_connections(self) -> int:
        return sum(1 for c in list(self._connections.values()) if not c.ws.closed and not c.closing)

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            with contextlib.suppress(Exception):
                await conn.ws.close()
