"""Composition root: reads settings once, builds the clients and services, hands them out.

Two shapes: production (a shepherd.yml, Postgres DSNs and ClickHouse clusters from settings)
and embedded (`shepherd dev` and the CLI with no DSN: embedded Postgres, chdb and a Temporal
dev server under the data directory, loaded with the demo dataset and its scaled config).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bot.adapters.clusters import ClusterLookup, DefaultResolver
from bot.adapters.postgres import apply_migrations, make_pool
from bot.backfill.rate_history import past_windows
from bot.config import ShepherdConfig, load_config, parse_config
from bot.planning import PlanningService
from bot.registry import CustomerRegistry, discover_customers
from bot.settings import Settings

log = logging.getLogger(__name__)
OUTAGE_ATTEMPTS = 20  # the outbox poster's attempts per message through a Slack outage (about 10 minutes)


@dataclass
class Runtime:
    settings: Settings
    config: ShepherdConfig
    registry: CustomerRegistry
    pool: Any  # psycopg ConnectionPool: bot state (schema shepherd)
    source: Any  # psycopg ConnectionPool: source scorecards (may be the same pool)
    lookup: ClusterLookup
    planning: PlanningService
    temporal_address: str | None
    embedded: Any | None = None  # EmbeddedStack when running on embedded parts
    demo: Any | None = None  # DemoStats of the embedded demo: loaded now, or reused


def demo_line(rt: Runtime) -> str:
    """One line saying whether the embedded demo was loaded now or reused ("" in production)."""
    stats = rt.demo
    if stats is None:
        return ""
    spec = saved_demo(rt.settings)
    what = (f"demo loaded now ({stats.scorecards:,} scorecards in {stats.seconds:.1f} s)" if stats.reloaded
            else f"demo reused: loaded {stats.loaded_at or 'earlier'}, jobs' changes kept")
    return f"{what}; --scale {spec.get('scale')} --seed {spec.get('seed')}"


def is_embedded(settings: Settings) -> bool:
    return settings.postgres_dsn is None


def demo_spec_for(settings: Settings, scale: float | None = None, seed: int | None = None) -> Any:
    """The demo spec to use: explicit values, else what the data directory was loaded with, else the defaults."""
    from bot.embedded.demo import DemoSpec

    saved = saved_demo(settings)
    spec = DemoSpec()
    return DemoSpec(
        scale=scale if scale is not None else saved.get("scale", spec.scale),
        seed=seed if seed is not None else saved.get("seed", spec.seed),
    )


def saved_demo(settings: Settings) -> dict[str, Any]:
    """What `demo.json` in the data directory says was loaded ({} when nothing was)."""
    marker = settings.data_dir / "demo.json"
    try:
        doc = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def check_demo_spec(settings: Settings, scale: float | None, seed: int | None, *, reset: bool = False) -> None:
    """Refuse, before anything starts, a --scale/--seed other than the loaded demo's (unless --reset)."""
    from bot.embedded.demo_marker import RESET_HINT, DemoSpecChanged

    saved = saved_demo(settings)
    if reset or not saved:
        return
    asked = {"scale": scale, "seed": seed}
    changed = [f"--{k} {v} (loaded: {saved.get(k)})" for k, v in asked.items() if v is not None and v != saved.get(k)]
    if changed:
        raise DemoSpecChanged(
            f"{settings.data_dir} holds the demo loaded with --scale {saved.get('scale')} --seed {saved.get('seed')};"
            f" you asked for {', '.join(changed)}. Jobs may have changed that data, so it is not loaded over:"
            f" {RESET_HINT}, or use another --data-dir.")


def embedded_config(settings: Settings, spec: Any) -> ShepherdConfig:
    """The demo config (pure: no server needed, so input can be checked before anything starts)."""
    from bot.embedded.demo import demo_config

    if "SHEPHERD_CONFIG_PATH" in os.environ:
        return load_config(settings.config_path)
    return parse_config(demo_config(spec), "demo config")


def embedded_registry(config: ShepherdConfig) -> CustomerRegistry:
    return CustomerRegistry.from_config(config)


@contextmanager
def open_runtime(
    settings: Settings, *, temporal: bool, scale: float | None = None, seed: int | None = None, reset: bool = False
) -> Iterator[Runtime]:
    with ExitStack() as stack:
        if is_embedded(settings):
            yield _embedded(settings, stack, temporal=temporal, scale=scale, seed=seed, reset=reset)
        else:
            yield _production(settings, stack)


def _embedded(
    settings: Settings, stack: ExitStack, *, temporal: bool, scale: float | None, seed: int | None, reset: bool
) -> Runtime:
    from bot.embedded.demo import load_demo
    from bot.embedded.stack import EmbeddedStack

    check_demo_spec(settings, scale, seed, reset=reset)
    spec = demo_spec_for(settings, scale, seed)
    config = embedded_config(settings, spec)
    parts = stack.enter_context(EmbeddedStack(settings.data_dir, temporal=temporal, reset=reset))
    demo = load_demo(parts.pg_dsn, parts.clickhouse, spec)
    log.info("embedded demo in %s: %s", settings.data_dir, "loaded now" if demo.reloaded else "reused")
    (settings.data_dir / "demo.json").write_text(json.dumps(
        {"scale": spec.scale, "seed": spec.seed, "loaded_at": demo.loaded_at}))
    (settings.data_dir / "shepherd.yml").write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    pool = make_pool(parts.pg_dsn, max_size=20)
    stack.callback(pool.close)
    apply_migrations(pool)
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: parts.chdb), config.lookup)
    registry = embedded_registry(config)
    planning = PlanningService(config, registry, pool, lookup)
    planning.history = partial(past_windows, pool)
    return Runtime(settings, config, registry, pool, pool, lookup, planning, parts.temporal_address, parts, demo)


def _production(settings: Settings, stack: ExitStack) -> Runtime:
    assert settings.postgres_dsn is not None
    config = load_config(settings.config_path)
    pool = make_pool(settings.postgres_dsn, max_size=20)
    stack.callback(pool.close)
    apply_migrations(pool)
    source = pool
    if settings.source_dsn is not None:
        source = make_pool(settings.source_dsn)
        stack.callback(source.close)
    discovered: list[tuple[str, str]] = []
    if config.customers.discover:
        with source.connection() as conn:
            discovered = discover_customers(conn, config)
    registry = CustomerRegistry.from_config(config, discovered)
    lookup = ClusterLookup(config.clusters, DefaultResolver(os.environ, lambda: _local_chdb(settings)), config.lookup)
    planning = PlanningService(config, registry, source, lookup)
    planning.history = partial(past_windows, pool)
    return Runtime(settings, config, registry, pool, source, lookup, planning, settings.temporal_address)


def _local_chdb(settings: Settings) -> Any:
    """Regions with engine "chdb" in a production config: this process's chdb under the data dir."""
    from bot.adapters.chdb_session import shared_session

    return shared_session(Path(settings.data_dir) / "clickhouse")


# ---- Slack ----------------------------------------------------------------------------


def slack_web_client(settings: Settings, metrics: Any = None) -> Any:
    """slack_sdk's AsyncWebClient with retries for rate limits (Retry-After), 5xx and dropped connections."""
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
        AsyncServerErrorRetryHandler,
    )
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.errors import ConfigError

    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        raise ConfigError("environment", ["SHEPHERD_SLACK_BOT_TOKEN and SHEPHERD_SLACK_SIGNING_SECRET must be set"])
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
        retry_handlers=[*slack_call_counters(metrics), AsyncRateLimitErrorRetryHandler(max_retry_count=5),
                        AsyncServerErrorRetryHandler(3), AsyncConnectionErrorRetryHandler(3)],
    )


def slack_call_counters(metrics: Any) -> list[Any]:
    """The Slack-call counter (bot.ops.metrics), first in a client's retry handlers; [] without metrics."""
    return [] if metrics is None else [metrics.slack_counter()]


def slack_deps(rt: Runtime, temporal_client: Any, web_client: Any, *, now: Any = None) -> Any:
    from bot.adapters.linear import LinearClient
    from bot.cpu import HeavyWork
    from bot.jobs.approvals import Approvals
    from bot.jobs.audit import AuditLog
    from bot.jobs.records import JobRecords
    from bot.purge.service import PurgeJobService
    from bot.slack.deps import SlackDeps, utc_now

    jobs = PurgeJobService(temporal_client, rt.pool, rt.config, rt.settings.temporal_task_queue)
    settings = rt.settings
    linear = LinearClient(settings.linear_api_url, settings.linear_api_key) if settings.linear_api_key else None
    heavy = HeavyWork()  # plans, verifications and charts off the event loop (bot/cpu.py); closed by the caller
    rt.planning.compute = heavy.compute
    return SlackDeps(rt.config, rt.planning, jobs, JobRecords(rt.pool), Approvals(rt.pool, rt.config.access),
                     AuditLog(rt.pool), web_client, now or utc_now, chart_dir=settings.data_dir / "charts",
                     linear=linear, heavy=heavy)


def slack_app(settings: Settings, deps: Any, token: Any = None, metrics: Any = None) -> Any:
    """The Bolt app with Shepherd's listeners; request signatures are always checked.

    Requests are authorized from `token` (a bot.slack.auth.TokenCheck, checked once at start by the
    caller), never by a Web API call per request: an ack does not need Slack's API to be up.
    """
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.ops.acks import TimedAsyncApp
    from bot.slack.auth import TokenCheck
    from bot.slack.listeners import register

    assert settings.slack_signing_secret is not None
    token = token or TokenCheck(deps.client)
    # Bolt's own client carries no token: Bolt sets the authorized one per request (and, given a token
    # here, would warn that `authorize` overrides it). Shepherd's listeners use deps.client.
    bolt_client = AsyncWebClient(base_url=deps.client.base_url, timeout=deps.client.timeout)
    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> Any:
        # a plain function: Bolt passes arguments by the names it finds (a bound method's `self` confuses it)
        return await token.authorize(enterprise_id, team_id, user_id)

    app = TimedAsyncApp(client=bolt_client, signing_secret=settings.slack_signing_secret.get_secret_value(),
                   authorize=authorize, request_verification_enabled=True, process_before_response=True)
    app.metrics = metrics  # ack latency per command, when measured
    app.shepherd_background = register(app, deps)  # type: ignore[attr-defined]
    return app


def monitoring(settings: Settings, deps: Any, metrics: Any = None) -> tuple[Any, Any]:
    """The monitor (and what follows a job's end: `bot.monitor.job_end`) and the outbox poster (its own Web API
    client: the poster does its own retrying)."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.backfill.chart import job_chart
    from bot.monitor.job_end import JobEnd
    from bot.monitor.service import Monitor
    from bot.slack.notices import ApprovalExpiry, RequesterNotices
    from bot.slack.outbox import Outbox
    from bot.slack.poster import SlackPoster
    from bot.verify.service import VerifyService
    from bot.writeups.service import WriteupService

    assert settings.slack_bot_token is not None
    pool, config, planning = deps.records.pool, deps.config, deps.planning
    outbox = Outbox(pool)
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                            base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
                            retry_handlers=slack_call_counters(metrics))
    verify = VerifyService(config, planning.registry, planning.source, planning.lookup,
                           on_verified=metrics.observe_verification if metrics is not None else None)
    job_end = JobEnd(pool, outbox, WriteupService(pool, config), verify, after_jobs=config.verify.after_jobs)
    notices = RequesterNotices(deps.client, outbox, deps.records, enabled=config.slack.requester_dms)
    expiry = ApprovalExpiry(deps.approvals, deps.records, outbox, notices, deps.now, lambda users: deps.changed(users))
    monitor = Monitor(pool, deps.jobs, outbox, config, deps.now, job_end, notices=notices, expiry=expiry,
                      on_change=lambda users: deps.changed(users),
                      draw=lambda story: deps.heavy.draw(job_chart, story))
    # 5xx and unreachable: backoff doubling to 60 s, 20 attempts: a Slack outage of about 10 minutes is
    # waited out (replies queued while it is down go out after), a longer one fails the row, logged.
    return monitor, SlackPoster(outbox, client, max_attempts=OUTAGE_ATTEMPTS)
