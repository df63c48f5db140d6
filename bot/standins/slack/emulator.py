"""A local Slack stand-in for Shepherd's Bolt app: Slack's Web API, its deliveries, its limits.

An aiohttp server on an ephemeral 127.0.0.1 port, running in its own thread with its own event loop,
so it serves sync code and any asyncio loop alike. State is in memory, behind one lock; with `state_path`
the people, channels, messages and response_urls are also kept in that SQLite file (bot/standins/slack/store.py)
and a new stand-in on the same file starts with them.

    emu = SlackEmulator(signing_secret=SECRET, bot_token="xoxb-...").start()   # or `with SlackEmulator(...)`
    emu.add_user("U_ALICE", "alice"); emu.add_channel("C_OPS", "ops", members=["U_ALICE"])
    client = AsyncWebClient(token="xoxb-...", base_url=emu.api_url)          # the app talks to it
    emu.app_url = "http://127.0.0.1:3000/slack/events"                      # where the app listens
    ack = await emu.slash("U_ALICE", "C_OPS", "/backfill", "plan hilton")    # -> Delivery(status, body, elapsed_s)
    [msg] = await emu.wait_for(lambda: emu.messages("C_OPS"))
    await emu.click("U_ALICE", "C_OPS", msg.ts, label="Run")

Public API
- `SlackEmulator(*, signing_secret, bot_token="xoxb-emulator", app_url=None, team_id="T0SHEPHERD",
  contract=None, strict=True, bot_user_id="U0SHEPHERD", bot_id="B0SHEPHERD", app_id="A0SHEPHERD",
  trigger_ttl_s=3.0, app_token=None, socket_mode=False, ack_timeout_s=3.0, state_path=None)`; `start()` (returns self),
  `close()`, context manager; `api_url` (ends with "/"), `app_url` (settable any time), `bot_user_id`.
- Directory: `add_user(id, name, *, real_name, tz, is_bot)`, `add_channel(id, name, *, members)` (no members:
  everyone is in it), `add_usergroup(id, handle, users)`; `deactivate(user)`, `restrict_dms(user)`.
- Deliveries into the app, each answering the app's ack as `Delivery`: `slash(user, channel, command, text)`,
  `click(user, channel, message_ts, *, action_id=None, label=None, index=None, as_shown=None)` (also on
  ephemerals; the only button if none is named; `as_shown`: a stale copy of the message, as a person may still
  see it), `click_home(user, ...)` (a button on their Home tab), `open_home(user)` (the `app_home_opened`
  event), `submit_view(user, view_id, values)` (values: block_id -> action_id -> value dict or plain string),
  `deliver_raw(body, headers)`. Over HTTP they are signed POSTs to `app_url` (slash commands and interactions
  form-encoded with a response_url and a trigger_id, events JSON); with `socket_mode` true they are Socket
  Mode envelopes (`bot/standins/slack/socket_mode.py`) to the app connected with `app_token` through
  apps.connections.open. A slash command's ack body is shown as Slack shows it: an ephemeral (or, with
  response_type in_channel, a channel message). A view_submission's `response_action` is applied. A click on
  an ephemeral has `container.is_ephemeral` true and no `message`, as Slack sends it. A response_url POST
  replaces or deletes the clicked message only with replace_original/delete_original true; otherwise it
  adds an ephemeral (or, with response_type in_channel, a channel message).
- Socket Mode: `socket_disconnect(reason, grace_s)` ("refresh_requested" or "warning"), `socket_drop(abrupt=)`,
  `socket_lose_acks(n)`, `wait_connected(n)`, and `socket.stats` (connections, hellos, redeliveries, frames).
- Inspection (bot/standins/slack/inspection.py; copies; users and channels by id or name): `users()` and
  `channels()` (id -> name),
  `messages(channel)` (top level, oldest first), `thread(channel, ts)` (replies), `dm(user)` (the app's direct
  messages with them), `message(channel, ts)` (any, ephemerals too; KeyError if none),
  `ephemerals(user, channel=None)`, `responses()` (response_url POST bodies, in order), `view(view_id)`,
  `open_views(user)`, `home(user)` and `home_publishes(user)`, `file_bytes(file_id)`, `calls` (every Web API
  call and response_url POST as `Call`), `contract_violations`, `contract_unknown`, `contract_source`.
- `await wait_for(predicate, timeout=10.0)`: polls until the predicate returns something truthy and returns
  it; a LookupError inside it counts as "not yet"; TimeoutError at the end.
- `subscribe(callback) -> unsubscribe`: `Change(kind, message)` for new/updated/deleted/ephemeral messages.
  Callbacks run on the thread that made the change: keep them short and thread-safe.
- Faults: `inject(method | None, *, status, count=1, retry_after=1)` (429 with Retry-After and
  `ratelimited`, or 5xx), `fault_rate(rate, statuses=(429, 500), seed=0)`; `outage(status=503,
  response_urls=True)` refuses every Web API call (and response_url POST) until `end_outage()`.
- Replays: `sent` lists every delivered request as (body, headers); `replay(i=-1)` delivers one again,
  byte for byte, signature and timestamp included.

Web API methods: `api.METHODS` (auth.test, chat.*, views.open/update/push/publish, users.info,
conversations.info/open, usergroups.list, usergroups.users.list, apps.connections.open (app-level token
only; any other method refuses it with `not_allowed_token_type`), the two-step file upload); any other
answers `unknown_method`. Slack's server-side limits are enforced: 50 blocks per message (100 per view),
40,000 characters of text (`msg_too_long`), Block Kit element limits (`invalid_blocks`), trigger ids single
use within 3 s, response_urls 5 uses within 30 minutes. chat.update keeps the text or blocks it is not
given, as Slack does. One deliberate strictness: a thread_ts that names no message answers `thread_not_found`.

Contract: each call of a method the contract has is checked against that operation's parameters
(bot/standins/slack/contract.py); problems go to `contract_violations` and, with strict=True, the call answers
`invalid_arguments` with `response_metadata.messages` as Slack does. Arguments the contract does not list
go to `contract_unknown`. The contract (`contract_source`) is `contract=` if given, else Slack's full
published spec where this machine has it (`$SHEPHERD_SLACK_CONTRACT`, or `shared/contracts/slack/` beside
the repository), else the project's trimmed copy of it (bot/standins/contracts/). Slack's 2021 spec lacks
files.getUploadURLExternal, files.completeUploadExternal (2024) and apps.connections.open: those are not checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

from bot.standins.slack.api import Backend
from bot.standins.slack.contract import Contract, default_contract_path
from bot.standins.slack.controls import Controls
from bot.standins.slack.delivery import Payloads, form_body, signed_headers
from bot.standins.slack.http import ApiServer, Fault
from bot.standins.slack.inspection import Inspection
from bot.standins.slack.loop import BackgroundServer
from bot.standins.slack.model import Call, Change, Channel, Delivery, Message, User, View
from bot.standins.slack.socket_mode import ACK_TIMEOUT_S, SocketModeServer
from bot.standins.slack.state import Workspace
from bot.standins.slack.store import WorkspaceStore
from bot.standins.slack.views import TRIGGER_TTL_S, Views

__all__ = ["SlackEmulator", "Message", "Call", "Change", "Delivery", "View"]

T = TypeVar("T")


class SlackEmulator(Controls, Inspection):
    def __init__(self, *, signing_secret: str, bot_token: str = "xoxb-emulator", app_url: str | None = None,
                 team_id: str = "T0SHEPHERD", contract: Path | None = None, strict: bool = True,
                 bot_user_id: str = "U0SHEPHERD", bot_id: str = "B0SHEPHERD", app_id: str = "A0SHEPHERD",
                 trigger_ttl_s: float = TRIGGER_TTL_S, app_token: str | None = None,
                 socket_mode: bool = False, ack_timeout_s: float = ACK_TIMEOUT_S,
                 state_path: Path | None = None) -> None:
        self.signing_secret = signing_secret
        self.app_url = app_url
        self.socket_mode = socket_mode  # deliveries as Socket Mode envelopes instead of signed HTTP POSTs
        self.bot_user_id = bot_user_id
        self._ws = Workspace(team_id, bot_user_id, bot_id, app_id)
        self._store = WorkspaceStore(state_path) if state_path is not None else None
        if self._store is not None:
            self._ws.keep_in(self._store)
        self._views = Views(self._ws, trigger_ttl_s)
        self._backend = Backend(self._ws, self._views)
        self.contract_source: Path = contract or default_contract_path()
        self._server = ApiServer(self._backend, bot_token, Contract.load(self.contract_source), strict)
        self._payloads = Payloads(self._backend)
        self.socket = SocketModeServer(app_id, ack_timeout_s=ack_timeout_s)
        app = self._server.app()
        if app_token is not None:
            self._server.app_token = app_token
            self._backend.socket_url = self.socket.open_url
            self.socket.install(app)
        self._http = BackgroundServer(app)
        self.sent: list[tuple[bytes, dict[str, str]]] = []  # every delivered request, as sent

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SlackEmulator:
        self._backend.base_url = self.socket.base_url = self._http.start()
        return self

    def close(self) -> None:
        self._http.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        if self._http.base_url is None:
            raise RuntimeError("the emulator is not started: call start() first")
        return self._http.base_url + "api/"

    # --- directory ---------------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, *, real_name: str | None = None, tz: str = "UTC",
                 is_bot: bool = False) -> None:
        with self._ws.lock:
            self._ws.saved_user(User(user_id, name, real_name or name.title(), tz, is_bot))

    def add_channel(self, channel_id: str, name: str, *, members: Iterable[str] = ()) -> None:
        with self._ws.lock:
            self._ws.saved_channel(Channel(channel_id, name.lstrip("#"), set(members)))

    def add_usergroup(self, group_id: str, handle: str, users: Iterable[str]) -> None:
        self._ws.add_usergroup(group_id, handle, list(users))

    # --- deliveries into the app -------------------------------------------------------------
    async def _deliver(self, body: bytes, headers: dict[str, str]) -> Delivery:
        if self.app_url is None:
            raise RuntimeError("set emulator.app_url to the app's request URL first")
        self.sent.append((body, dict(headers)))
        return await self._http.post(self.app_url, body, headers)

    async def _send(self, kind: str, payload: dict[str, Any], body: bytes, *, replies: bool,
                    content_type: str = "application/x-www-form-urlencoded") -> Delivery:
        """Over Socket Mode (an envelope of `kind`) when `socket_mode` is on, else a signed HTTP POST."""
        if self.socket_mode:
            return await self._http.call(self.socket.deliver(kind, payload, accepts_response_payload=replies))
        return await self._deliver(body, signed_headers(self.signing_secret, body, content_type=content_type))

    async def replay(self, index: int = -1) -> Delivery:
        """Deliver an earlier request again, byte for byte (what an attacker who saw it could do)."""
        body, headers = self.sent[index]
        return await self._deliver(body, headers)

    async def slash(self, user: str, channel: str, command: str, text: str) -> Delivery:
        fields = self._payloads.slash(user, channel, command, text)
        delivery = await self._send("slash_commands", fields, urlencode(fields).encode(), replies=True)
        self._ws.notify(self._payloads.after_slash_ack(user, channel, delivery))
        return delivery

    async def click(self, user: str, channel: str, message_ts: str, *, action_id: str | None = None,
                    label: str | None = None, index: int | None = None, as_shown: Message | None = None) -> Delivery:
        payload = self._payloads.click(user, channel, message_ts, action_id=action_id, label=label, index=index,
                                       as_shown=as_shown)
        return await self._send("interactive", payload, form_body(payload), replies=False)

    async def click_home(self, user: str, *, action_id: str | None = None, label: str | None = None,
                         index: int | None = None) -> Delivery:
        payload = self._payloads.home_click(user, action_id=action_id, label=label, index=index)
        return await self._send("interactive", payload, form_body(payload), replies=False)

    async def open_home(self, user: str) -> Delivery:
        """The person opens the app's Home tab: the `app_home_opened` event."""
        payload = self._payloads.app_home_opened(user)
        return await self._send("events_api", payload, json.dumps(payload).encode(), replies=False,
                                content_type="application/json")

    async def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, Any]]) -> Delivery:
        view = self._views.get(view_id)
        payload = self._payloads.view_submission(user, view, values)
        delivery = await self._send("interactive", payload, form_body(payload), replies=True)
        if delivery.status == 200:
            self._views.after_submission(view, delivery.body)
        return delivery

    async def deliver_raw(self, body: bytes, headers: dict[str, str]) -> Delivery:
        return await self._deliver(body, headers)

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 10.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(LookupError):
                value = predicate()
                if value:
                    return value
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}:{'ok' if c.ok else c.error}" for c in self.calls[-5:])
                raise TimeoutError(f"condition not met within {timeout} s (last calls: {recent or 'none'})")
            await asyncio.sleep(0.02)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        with self._ws.lock:
            self._ws.subscribers.append(callback)

        def unsubscribe() -> None:
            with self._ws.lock, contextlib.suppress(ValueError):
                self._ws.subscribers.remove(callback)

        return unsubscribe

    # --- faults ------------------------------------------------------------------------------
    def inject(self, method: str | None, *, status: int, count: int = 1, retry_after: int = 1) -> None:
        with self._ws.lock:
            self._server.faults.queued.append(Fault(method, status, count, retry_after))

    def outage(self, status: int = 503, *, response_urls: bool = True) -> None:
        """Slack is down: every Web API call (and, with `response_urls`, every response_url POST) gets `status`."""
        with self._ws.lock:
            self._server.faults.outage, self._server.faults.outage_response_urls = status, response_urls

    def end_outage(self) -> None:
        with self._ws.lock:
            self._server.faults.outage = None

    def fault_rate(self, rate: float, statuses: Sequence[int] = (429, 500), seed: int = 0) -> None:
        with self._ws.lock:
            faults = self._server.faults
            faults.rate, faults.statuses, faults.rng = rate, tuple(statuses), random.Random(seed)
