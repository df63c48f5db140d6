"""`shepherd dev`: the embedded stack with the demo dataset and a Temporal worker, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from bot.app import Runtime, open_runtime
from bot.settings import Settings
from bot.worker_cli import run_worker_until


def _banner(rt: Runtime, settings: Settings, seconds: float) -> str:
    return (
        f"shepherd dev ready in {seconds:.1f} s\n"
        f"  data:      {settings.data_dir}\n"
        f"  temporal:  {rt.temporal_address} (worker on task queue {settings.temporal_task_queue})\n"
        f"  demo:      {len(rt.registry)} customers on {len(rt.config.clusters)} clusters "
        f"(config written to {settings.data_dir / 'shepherd.yml'})\n"
        "Try, after --ready-exit or once this stops:\n"
        "  shepherd plan backfill hilton,marriott,spirit,united-east,care-oregon\n"
        "  shepherd plan purge oportun"
    )


def run_dev(settings: Settings, *, scale: float | None, seed: int | None, ready_exit: bool) -> int:
    began = time.monotonic()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with open_runtime(settings, temporal=True, scale=scale, seed=seed) as rt:

            def ready(client: Any) -> None:
                print(_banner(rt, settings, time.monotonic() - began), flush=True)
                if ready_exit:
                    stop.set()
                else:
                    print("Press Ctrl-C to stop.", flush=True)

            await run_worker_until(rt, stop, ready=ready)
            if not ready_exit:
                print("\nstopping the embedded stack ...", flush=True)

    asyncio.run(main())
    return 0
