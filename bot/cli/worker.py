"""`shepherd worker`: Shepherd's workflows and activities against a configured Temporal.

Also used in-process by `shepherd dev`. More workers on the same task queue share the load. A worker
polls the control queue (job workflows) and the queues clusters name in shepherd.yml (`task_queue:`),
or only those given by `--queues`; each queue gets its own Temporal worker in the process.
`add_worker_parser(sub)` adds the subcommand to the CLI; `run_worker(settings, args)` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from temporalio.client import Client

from bot.app import Runtime, open_runtime
from bot.config import TASK_QUEUE, ShepherdConfig
from bot.errors import UpstreamError, UserInputError
from bot.ops.activity_metrics import ActivityMetrics
from bot.ops.health import postgres_check, task_queue_check, temporal_check
from bot.ops.server import Ops, ops_server
from bot.ops.temporal_runtime import WORKER_METRICS_PORT, sdk_metrics_runtime
from bot.settings import Settings
from bot.temporal.connection import client_options, without_secrets
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker


def add_worker_parser(sub: Any) -> argparse.ArgumentParser:
    """The `worker` subcommand; every option defaults to its SHEPHERD_* setting."""
    worker: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run the Temporal worker (needs SHEPHERD_POSTGRES_DSN, SHEPHERD_TEMPORAL_ADDRESS)")
    worker.add_argument("--address", help="Temporal frontend host:port (SHEPHERD_TEMPORAL_ADDRESS)")
    worker.add_argument("--namespace", help="Temporal namespace (SHEPHERD_TEMPORAL_NAMESPACE)")
    worker.add_argument("--tls", action="store_true", default=None, help="connect with TLS (SHEPHERD_TEMPORAL_TLS)")
    worker.add_argument("--task-queue", help="the control task queue (SHEPHERD_TEMPORAL_TASK_QUEUE, default shepherd)")
    worker.add_argument("--queues", metavar="Q1,Q2",
                        help="task queues to poll (SHEPHERD_WORKER_QUEUES; default: the control queue and "
                             "every cluster's task_queue)")
    worker.add_argument("--max-activities", type=int, default=16, metavar="N",
                        help="activities run at once by this worker (default 16)")
    return worker


def apply_worker_args(settings: Settings, args: argparse.Namespace | None) -> Settings:
    if args is None:
        return settings
    update = {key: value for key, value in (
        ("temporal_address", getattr(args, "address", None)),
        ("temporal_namespace", getattr(args, "namespace", None)),
        ("temporal_tls", getattr(args, "tls", None)),
        ("temporal_task_queue", getattr(args, "task_queue", None)),
        ("worker_queues", getattr(args, "queues", None)),
    ) if value is not None}
    return settings.model_copy(update=update) if update else settings


def worker_queues(settings: Settings, config: ShepherdConfig) -> list[str]:
    """The queues this worker polls: SHEPHERD_WORKER_QUEUES / --queues, else control + every cluster's."""
    if settings.worker_queues is None:
        return list(dict.fromkeys([settings.temporal_task_queue, *config.task_queues()]))
    queues = list(dict.fromkeys(q.strip() for q in settings.worker_queues.split(",") if q.strip()))
    bad = [q for q in queues if not TASK_QUEUE.fullmatch(q)]
    if bad or not queues:
        raise UserInputError(f"--queues {settings.worker_queues!r}: give task queue names separated by commas\n"
                             "usage: shepherd worker [--queues Q1,Q2] [--task-queue CONTROL] [--address HOST:PORT]")
    return queues


def queues_text(queues: Sequence[str]) -> str:
    return f"task queue{'s' if len(queues) > 1 else ''} {', '.join(queues)}"


async def connect_temporal(settings: Settings, address: str | None, runtime: Any = None) -> Client:
    if not address:
        raise UserInputError("no Temporal address: set SHEPHERD_TEMPORAL_ADDRESS (or use `shepherd dev`)")
    options = client_options(settings)  # a missing or unreadable certificate file is the user's to fix
    try:
        return await Client.connect(address, **options, runtime=runtime)
    except Exception as err:
        raise UpstreamError(f"cannot reach Temporal at {address}: {without_secrets(str(err), settings)}") from None


async def run_worker_until(rt: Runtime, stop: asyncio.Event, *, ready: Any = None, max_activities: int = 16,
                           ops: Ops | None = None, runtime: Any = None, queues: Sequence[str] | None = None) -> None:
    """Run a worker on each of `queues` (default: worker_queues()) until `stop`; with `ops`, its
    activities are measured and its readiness checked. `max_activities` is per queue."""
    client = await connect_temporal(rt.settings, rt.temporal_address, runtime)
    deps = ActivityDeps(rt.config, rt.source, rt.pool, rt.lookup)
    if ops is not None:
        gauge = ops.metrics.mutations_unfinished
        deps.on_unfinished_mutations = lambda cluster, table, count: gauge.labels(cluster, table).set(count)
    polled = list(queues) if queues is not None else worker_queues(rt.settings, rt.config)
    interceptors = [ActivityMetrics(ops.metrics)] if ops is not None else []
    async with AsyncExitStack() as workers:
        for queue in polled:
            await workers.enter_async_context(
                build_worker(client, queue, deps, max_activities=max_activities, interceptors=interceptors,
                             drain=timedelta(seconds=rt.settings.worker_drain_s)))
        if ops is not None:
            ops.readiness.add("postgres", postgres_check(rt.pool))
            ops.readiness.add("temporal", temporal_check(client))
            for queue in polled:
                name = "task_queue" if queue == polled[0] else f"task_queue:{queue}"
                ops.readiness.add(name, task_queue_check(client, queue))
        if ready is not None:
            ready(client)
        await stop.wait()
        if ops is not None:
            ops.readiness.stopping = True


def ready(client: Client, ops: Ops) -> None:
    print(f"shepherd worker ready as {client.identity}", flush=True)
    ops.readiness.ready()


def run_worker(settings: Settings, args: argparse.Namespace | None = None) -> int:
    settings = apply_worker_args(settings, args)
    max_activities = int(getattr(args, "max_activities", 16) or 16)
    if max_activities < 1:
        raise UserInputError("--max-activities must be at least 1")
    if settings.postgres_dsn is None or settings.temporal_address is None:
        raise UserInputError(
            "shepherd worker needs SHEPHERD_POSTGRES_DSN and SHEPHERD_TEMPORAL_ADDRESS "
            "(on the embedded stack, `shepherd dev` runs a worker in-process)"
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ops = Ops()
        port = settings.metrics_port if settings.metrics_port is not None else WORKER_METRICS_PORT
        async with ops_server(ops, settings.metrics_host, port) as bound:
            if bound is not None:
                print(f"shepherd worker: /metrics, /healthz and /readyz on http://{settings.metrics_host}:{bound}",
                      flush=True)
            runtime = sdk_metrics_runtime(settings)
            with open_runtime(settings, temporal=False) as rt:
                queues = worker_queues(settings, rt.config)
                print(f"shepherd worker on {queues_text(queues)} at {rt.temporal_address}", flush=True)
                await run_worker_until(rt, stop, max_activities=max_activities, ops=ops, runtime=runtime,
                                       queues=queues, ready=lambda client: ready(client, ops))

    asyncio.run(main())
    return 0
