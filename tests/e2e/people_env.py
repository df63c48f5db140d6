"""The stack the approval, Home tab and Socket Mode tests run on: the Slack stand-in, the real Bolt app with
Shepherd's listeners (over HTTP, or connected in Socket Mode by slack_sdk's real client through
apps.connections.open), a worker, the outbox poster, and a monitor the tests tick by hand.

Approvers are alice, bob and the user group @dba (erin and frank): a request by alice goes to bob, erin
and frank. Operators are alice and carol."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from tests.e2e.conftest import SECRET, TOKEN, Clock

APP_TOKEN = "xapp-1-e2e-app-token"
PEOPLE = {"U_ALICE": "alice", "U_BOB": "bob", "U_CAROL": "carol", "U_DAVE": "dave", "U_ERIN": "erin",
          "U_FRANK": "frank"}
DBA = ("U_ERIN", "U_FRANK")


@dataclass
class PeopleEnv:
    emu: Any
    deps: Any
    demo: Any
    clock: Clock
    monitor: Any
    handler: Any | None  # the Socket Mode handler, when connected that way
    home: Any  # bot.slack.home.HomeTabs
    acks: list[float] = field(default_factory=list)  # seconds, every delivery the tests made

    async def say(self, user: str, text: str, channel: str = "C_OPS") -> Any:
        command, _, rest = text.partition(" ")
        return self._timed(await self.emu.slash(user, channel, command, rest))

    async def click(self, user: str, channel: str, ts: str, **how: Any) -> Any:
        return self._timed(await self.emu.click(user, channel, ts, **how))

    def _timed(self, delivery: Any) -> Any:
        self.acks.append(delivery.elapsed_s)
        return delivery

    def jobs(self) -> list[tuple[str, str, str]]:
        with self.demo.pool.connection() as conn:
            return [tuple(r) for r in conn.execute("SELECT id, kind, state FROM shepherd.jobs ORDER BY created_at")]

    def approvals(self, job: str) -> list[tuple[str, str]]:
        with self.demo.pool.connection() as conn:
            return [tuple(r) for r in conn.execute("SELECT approver, decision FROM shepherd.approvals WHERE job_id = %s"
                                                   " ORDER BY id", (job,))]

    def replies(self, user: str) -> list[str]:
        return [m.text for m in self.emu.ephemerals(user)]

    async def reply_to(self, user: str, before: int, timeout: float = 20.0) -> str:
        return str(await self.emu.wait_for(lambda: (self.replies(user)[before:] or [None])[0], timeout=timeout))

    async def top(self, channel: str = "C_OPS", before: int = 0, timeout: float = 30.0) -> Any:
        return await self.emu.wait_for(lambda: (self.emu.messages(channel)[before:] or [None])[0], timeout=timeout)

    async def dm_with(self, user: str, text: str, timeout: float = 20.0) -> Any:
        """The app's latest direct message to `user` containing `text`."""
        return await self.emu.wait_for(lambda: next((m for m in reversed(self.emu.dm(user)) if text in m.text),
                                                    None), timeout=timeout)


def people_config(config: Any) -> Any:
    access = config.access.model_copy(update={"approvers": ("U_ALICE", "U_BOB", "@dba"),
                                              "operators": ("U_ALICE", "U_CAROL")})
    slack = config.slack.model_copy(update={"home_min_interval_s": 0.5})
    return config.model_copy(update={"access": access, "slack": slack})


@contextlib.asynccontextmanager
async def people_stack(temporal_env: Any, demo: Any, *, socket: bool) -> AsyncIterator[PeopleEnv]:
    from slack_bolt.async_app import AsyncApp

    from bot.cli.serve import http_server, socket_mode
    from bot.jobs.approvals import Approvals
    from bot.jobs.audit import AuditLog
    from bot.jobs.records import JobRecords
    from bot.monitor.service import Monitor
    from bot.planning import PlanningService
    from bot.purge.service import PurgeJobService
    from bot.registry import CustomerRegistry
    from bot.slack.deps import SlackDeps
    from bot.slack.listeners import register
    from bot.slack.notices import ApprovalExpiry, RequesterNotices
    from bot.slack.outbox import Outbox
    from bot.slack.poster import SlackPoster
    from bot.standins.slack.emulator import SlackEmulator
    from bot.temporal.worker import build_worker

    config = people_config(demo.config)
    queue = f"e2e-people-{uuid.uuid4()}"
    clock = Clock()
    emu = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN, app_token=APP_TOKEN, socket_mode=socket,
                        ack_timeout_s=1.0).start()
    assert emu.contract_source is not None, "Slack's contract (../shared/contracts/slack) was not found"
    for uid, name in PEOPLE.items():
        emu.add_user(uid, name)
    emu.add_channel("C_OPS", "ops", members=PEOPLE)
    emu.add_usergroup("S_DBA", "dba", DBA)
    web = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    planning = PlanningService(config, CustomerRegistry.from_config(config), demo.pool, demo.lookup)
    jobs = PurgeJobService(temporal_env.client, demo.pool, config, queue, heartbeat_timeout_s=10)
    deps = SlackDeps(config, planning, jobs, JobRecords(demo.pool), Approvals(demo.pool, config.access),
                     AuditLog(demo.pool), web, clock, chart_dir=None)
    app = AsyncApp(client=web, signing_secret=SECRET, process_before_response=True)
    background = register(app, deps)
    outbox = Outbox(demo.pool)
    notices = RequesterNotices(web, outbox, deps.records)
    expiry = ApprovalExpiry(deps.approvals, deps.records, outbox, notices, clock, lambda users: deps.changed(users))
    monitor = Monitor(demo.pool, jobs, outbox, config, clock, notices=notices, expiry=expiry,
                      on_change=lambda users: deps.changed(users))
    poster = SlackPoster(outbox, AsyncWebClient(token=TOKEN, base_url=emu.api_url, retry_handlers=[]),
                         per_channel_interval_s=0.05)
    stop = asyncio.Event()
    posting = asyncio.create_task(poster.run(stop, poll_s=0.05))
    try:
        async with build_worker(temporal_env.client, queue, demo.deps), contextlib.AsyncExitStack() as stack:
            handler = None
            if socket:
                handler = await stack.enter_async_context(socket_mode(app, APP_TOKEN, ping_interval=1.0))
                await emu.wait_connected()
            else:
                port = await stack.enter_async_context(http_server(app, "127.0.0.1", 0))
                emu.app_url = f"http://127.0.0.1:{port}/slack/events"
            env = PeopleEnv(emu, deps, demo, clock, monitor, handler, background.home)
            yield env
            await background.drain()
            assert emu.contract_violations == [], emu.contract_violations
            slow = [round(s, 2) for s in env.acks if s >= 3.0]
            assert not slow, f"acks slower than Slack's 3 s: {slow}"
    finally:
        stop.set()
        await posting
        emu.close()


async def settle(seconds: float = 0.3) -> None:
    """Let background work (replies, the poster) run a little."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
