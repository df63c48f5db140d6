"""`shepherd worker`: Shepherd's workflows and activities against a configured Temporal.

Also used in-process by `shepherd dev`. More workers on the same task queue share the load.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from temporalio.client import Client

from bot.app import Runtime, open_runtime
from bot.errors import UpstreamError, UserInputError
from bot.settings import Settings
from bot.temporal.deps import ActivityDeps
from bot.temporal.worker import build_worker


async def connect_temporal(settings: Settings, address: str | None) -> Client:
    if not address:
        raise UserInputError("no Temporal address: set SHEPHERD_TEMPORAL_ADDRESS (or use `shepherd dev`)")
    try:
        return await Client.connect(address, namespace=settings.temporal_namespace, tls=settings.temporal_tls)
    except Exception as err:
        raise UpstreamError(f"cannot reach Temporal at {address}: {err}") from None


async def run_worker_until(rt: Runtime, stop: asyncio.Event, *, ready: Any = None) -> None:
    client = await connect_temporal(rt.settings, rt.temporal_address)
    deps = ActivityDeps(rt.config, rt.source, rt.pool, rt.lookup)
    async with build_worker(client, rt.settings.temporal_task_queue, deps):
        if ready is not None:
            ready(client)
        await stop.wait()


def run_worker(settings: Settings) -> int:
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
        with open_runtime(settings, temporal=False) as rt:
            print(f"shepherd worker on task queue {settings.temporal_task_queue} at {rt.temporal_address}",
                  flush=True)
            await run_worker_until(rt, stop)

    asyncio.run(main())
    return 0
