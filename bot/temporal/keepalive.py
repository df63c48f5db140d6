"""Heartbeats from a side thread while an activity's thread is blocked in one long call.

A query or a statement can take longer than the heartbeat timeout at production sizes (a recount
over a big month, a mutation's issue): without a heartbeat meanwhile, Temporal would take the
attempt for dead and start another. `keepalive(details, every_s)` sends `details()` every
`every_s` seconds until the block ends (the activity's own heartbeats go on as usual).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity

EVERY_S = 2.0


@contextmanager
def keepalive(details: Callable[[], Any], every_s: float = EVERY_S) -> Iterator[None]:
    stop = threading.Event()
    context = contextvars.copy_context()  # the activity's context: heartbeat() works from the thread

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                activity.heartbeat(details())
            except Exception:  # a missed keepalive is retried at the next tick
                activity.logger.debug("keepalive heartbeat failed", exc_info=True)

    thread = threading.Thread(target=context.run, args=(loop,), name="heartbeat-keepalive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s + 5)
