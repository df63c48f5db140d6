"""`shepherd dev`: the embedded stack with the demo dataset, held until Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from bot.app import open_runtime
from bot.settings import Settings


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_dev(settings: Settings, *, scale: float | None, seed: int | None, ready_exit: bool) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on SIGTERM as on Ctrl-C
    began = time.monotonic()
    with open_runtime(settings, temporal=True, scale=scale, seed=seed) as rt:
        embedded = rt.embedded
        clusters = len(rt.config.clusters)
        print(
            f"shepherd dev ready in {time.monotonic() - began:.1f} s\n"
            f"  data:      {settings.data_dir}\n"
            f"  temporal:  {rt.temporal_address}\n"
            f"  demo:      {len(rt.registry)} customers on {clusters} clusters "
            f"(config written to {settings.data_dir / 'shepherd.yml'})\n"
            "Try, in another terminal once this stops, or after --ready-exit:\n"
            "  shepherd plan backfill hilton,marriott,spirit,united-east,care-oregon\n"
            "  shepherd plan purge oportun",
            flush=True,
        )
        if embedded is not None and not ready_exit:
            print("Press Ctrl-C to stop.", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nstopping the embedded stack ...", flush=True)
    return 0
