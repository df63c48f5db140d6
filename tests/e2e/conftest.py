"""End to end: the Slack stand-in delivers signed requests over HTTP into the real Bolt app, which
runs on the embedded stack (Postgres, chdb, a Temporal dev server and a worker on a uuid queue)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio

from tests.integration.conftest import make_demo, temporal_env  # noqa: F401  (fixtures)

SECRET = "e2e-signing-secret"
TOKEN = "xoxb-e2e-token"
USERS = {"U_ALICE": "alice", "U_BOB": "bob", "U_CAROL": "carol", "U_DAVE": "dave"}


@dataclass
class Clock:
    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class SlackEnv:
    emu: Any
    deps: Any
    demo: Any
    clock: Clock

    async def say(self, user: str, text: str, channel: str = "C_OPS") -> Any:
        command, _, rest = text.partition(" ")
        return await self.emu.slash(user, channel, command, rest)

    def jobs(self) -> list[tuple[str, str, str]]:
        with self.demo.pool.connection() as conn:
            return [tuple(r) for r in conn.execute("SELECT id, kind, state FROM shepherd.jobs ORDER BY created_at")]

    def audit(self) -> list[tuple[str, str, str]]:
        with self.demo.pool.connection() as conn:
            return [tuple(r) for r in conn.execute("SELECT actor, action, outcome FROM shepherd.audit_log ORDER BY id")]

    def replies(self, user: str) -> list[str]:
        """Everything said privately to `user`: ephemeral messages and response_url replies."""
        said = [m.text for m in self.emu.ephemerals(user)]
        return said

    async def reply_to(self, user: str, before: int, timeout: float = 20.0) -> str:
        """The next private reply to `user` after the first `before` ones."""
        return str(await self.emu.wait_for(lambda: (self.replies(user)[before:] or [None])[0], timeout=timeout))

    async def post(self, user: str, text: str, channel: str = "C_OPS") -> Any:
        """Say `text` and return the top-level message it made in the channel."""
        before = len(self.emu.messages(channel))
        await self.say(user, text, channel)
        return await self.top(channel, before)

    async def top(self, channel: str = "C_OPS", before: int = 0, timeout: float = 30.0) -> Any:
        """The next top-level message in the channel after the first `before`."""
        return await self.emu.wait_for(lambda: (self.emu.messages(channel)[before:] or [None])[0], timeout=timeout)


def ack_text(delivery: Any) -> str:
    try:
        return str(json.loads(delivery.body or "{}").get("text", ""))
    except ValueError:
        return delivery.body or ""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def slack(temporal_env: Any, make_demo: Any) -> AsyncIterator[SlackEnv]:  # noqa: F811
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.cli.serve import http_server
    from bot.jobs.approvals import Approvals
    from bot.jobs.audit import AuditLog
    from bot.jobs.records import JobRecords
    from bot.planning import PlanningService
    from bot.purge.service import PurgeJobService
    from bot.registry import CustomerRegistry
    from bot.slack.deps import SlackDeps
    from bot.slack.listeners import register
    from bot.standins.slack.emulator import SlackEmulator
    from bot.temporal.worker import build_worker

    demo = make_demo(scale=0.002)
    queue = f"e2e-{uuid.uuid4()}"
    clock = Clock()
    emu = SlackEmulator(signing_secret=SECRET, bot_token=TOKEN).start()
    for uid, name in USERS.items():
        emu.add_user(uid, name)
    emu.add_channel("C_OPS", "ops", members=USERS)
    emu.add_channel("C_RANDOM", "random", members=USERS)
    web = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    planning = PlanningService(demo.config, CustomerRegistry.from_config(demo.config), demo.pool, demo.lookup)
    jobs = PurgeJobService(temporal_env.client, demo.pool, demo.config, queue, heartbeat_timeout_s=10)
    deps = SlackDeps(demo.config, planning, jobs, JobRecords(demo.pool), Approvals(demo.pool, demo.config.access),
                     AuditLog(demo.pool), web, clock, chart_dir=None)
    app = AsyncApp(client=web, signing_secret=SECRET, process_before_response=True)
    background = register(app, deps)
    try:
        async with build_worker(temporal_env.client, queue, demo.deps), \
                http_server(app, "127.0.0.1", 0) as port:
            emu.app_url = f"http://127.0.0.1:{port}/slack/events"
            yield SlackEnv(emu, deps, demo, clock)  # one per test module: tests see each other's jobs
            await background.drain()
            assert emu.contract_violations == [], emu.contract_violations
    finally:
        emu.close()
