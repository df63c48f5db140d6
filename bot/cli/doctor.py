"""`shepherd doctor`: every configured connection checked at once, one table, never a secret.

Postgres (state, and the source if separate), shepherd.yml, Temporal and its namespace, the task
queues' workers, each cluster's regions, the Slack token and the Linear key. Exit 0 when everything
required answers, 1 otherwise. A cluster is down only when none of its regions answers; a task
queue without a worker, or a Slack/Linear credential that is not set, is reported and not required.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from bot.adapters.clusters import redact
from bot.config import ShepherdConfig, load_config
from bot.errors import ShepherdError, UserInputError
from bot.settings import Settings
from commands import render

TIMEOUT_S = 10.0


@dataclass
class Row:
    check: str
    target: str
    ok: bool | None  # None: not checked (not configured)
    detail: str
    required: bool = True


def _text(err: BaseException) -> str:
    text = err.message if isinstance(err, ShepherdError) else (" ".join(str(err).split()) or type(err).__name__)
    return redact(text)[:160]


def _where(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def postgres_row(name: str, dsn: str) -> Row:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=int(TIMEOUT_S)) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return Row(name, _where(dsn), True, f"PostgreSQL {version[0] if version else '?'}")
    except Exception as err:
        return Row(name, _where(dsn), False, _text(err).replace(dsn, "***"))


async def temporal_rows(settings: Settings, queues: list[str]) -> list[Row]:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from bot.cli.worker import connect_temporal
    from bot.ops.health import POLL_FRESH_S
    from bot.temporal.connection import without_secrets

    address = settings.temporal_address or ""
    try:
        client = await asyncio.wait_for(connect_temporal(settings, address), TIMEOUT_S)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    except Exception as err:
        reason = "no answer" if isinstance(err, TimeoutError) else without_secrets(_text(err), settings)
        return [Row("temporal", f"{address} ({settings.temporal_namespace})", False, reason)]
    rows = [Row("temporal", f"{address} ({settings.temporal_namespace})", True, "namespace found")]
    from bot.monitor.queue_watch import QueueWatch

    watch = QueueWatch(client, 0.0)
    for queue in queues:
        try:
            last = await watch.last_poll(queue)
        except Exception as err:
            rows.append(Row("task queue", queue, False, _text(err), required=False))
            continue
        fresh = last is not None and time.time() - last < POLL_FRESH_S
        rows.append(Row("task queue", queue, fresh, "a worker is polling" if fresh else "no worker polling",
                        required=False))
    return rows


def cluster_rows(config: ShepherdConfig) -> list[Row]:
    from bot.adapters.clickhouse import connect_region

    rows: list[Row] = []
    for cluster in config.clusters:
        mine: list[Row] = []
        for region in cluster.regions or cluster.shards:
            target = f"{cluster.name}/{region.name} {region.host}:{region.port}"
            if region.engine == "chdb":
                mine.append(Row("clickhouse", f"{cluster.name}/{region.name}", None, "embedded chdb: not checked"))
                continue
            try:
                client = connect_region(region, os.environ)
                client.query("SELECT 1")
                mine.append(Row("clickhouse", target, True, f"database {region.database}"))
            except Exception as err:
                mine.append(Row("clickhouse", target, False, _text(err)))
        answered = any(r.ok is not False for r in mine)
        for r in mine:
            # a region down beside one that answers: the lookup falls back; every shard is needed
            r.required = bool(cluster.shards) or not answered
        rows += mine
    return rows


def slack_row(settings: Settings) -> Row:
    if settings.slack_bot_token is None:
        return Row("slack", "bot token", None, "SHEPHERD_SLACK_BOT_TOKEN not set", required=False)
    from slack_sdk import WebClient

    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url or
                       WebClient.BASE_URL, timeout=int(TIMEOUT_S))
    try:
        answer = client.auth_test()
        return Row("slack", "bot token", True, f"team {answer.get('team', '?')}, bot {answer.get('user', '?')}")
    except Exception as err:
        return Row("slack", "bot token", False, _text(err).replace(settings.slack_bot_token.get_secret_value(), "***"))


def linear_row(settings: Settings) -> Row:
    if settings.linear_api_key is None:
        return Row("linear", settings.linear_api_url, None, "SHEPHERD_LINEAR_API_KEY not set", required=False)
    import httpx

    key = settings.linear_api_key.get_secret_value()
    try:
        answer = httpx.post(settings.linear_api_url, json={"query": "{ viewer { name } }"}, timeout=TIMEOUT_S,
                            headers={"Authorization": key, "Content-Type": "application/json"})
        answer.raise_for_status()
        name = ((answer.json().get("data") or {}).get("viewer") or {}).get("name")
        if not name:
            raise ValueError("no viewer in the answer (is the key valid?)")
        return Row("linear", settings.linear_api_url, True, f"viewer {name}")
    except Exception as err:
        return Row("linear", settings.linear_api_url, False, _text(err).replace(key, "***"))


def run_doctor(settings: Settings) -> int:
    if settings.postgres_dsn is None or settings.temporal_address is None:
        raise UserInputError("shepherd doctor checks a deployment: set SHEPHERD_POSTGRES_DSN and "
                             "SHEPHERD_TEMPORAL_ADDRESS (and SHEPHERD_CONFIG_PATH)\nusage: shepherd doctor")
    for noisy in ("urllib3", "clickhouse_connect"):  # their retry warnings: the table says it once
        logging.getLogger(noisy).setLevel(logging.ERROR)
    rows = [postgres_row("postgres", settings.postgres_dsn.get_secret_value())]
    if settings.source_dsn is not None:
        rows.append(postgres_row("source", settings.source_dsn.get_secret_value()))
    config: ShepherdConfig | None = None
    try:
        config = load_config(settings.config_path)
        rows.append(Row("config", str(settings.config_path), True, f"{len(config.clusters)} clusters"))
    except ShepherdError as err:
        rows.append(Row("config", str(settings.config_path), False, _text(err).split("\n")[0]))
    queues = list(dict.fromkeys([settings.temporal_task_queue, *(config.task_queues() if config else ())]))
    rows += asyncio.run(temporal_rows(settings, queues))
    if config is not None:
        rows += cluster_rows(config)
    rows += [slack_row(settings), linear_row(settings)]
    status = {True: "ok", False: "DOWN", None: "-"}
    table = [[r.check, r.target, status[r.ok] if r.ok is not False or r.required else "down", r.detail]
             for r in rows]
    print(render.table(["check", "target", "status", "detail"], table))
    down = [r for r in rows if r.ok is False and r.required]
    print(f"{len(down)} required connection(s) down: {', '.join(f'{r.check} {r.target}' for r in down)}" if down
          else "everything required answers")
    return 1 if down else 0
