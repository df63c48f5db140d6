"""Heavy work kept off the serve process's event loop, and off the executor its acks use.

Two kinds, two places:
- `blocking`: queries and the code around them (planning's reads, a verification's counts). psycopg and
  chdb release the GIL while the server works, so threads suit them; they get a bounded pool of their
  own, so a `/purge plan all` and a `/verify all` at once never take the default executor's threads
  that each ack's replay guard (bot/slack/replay.py) waits for.
- `compute`: pure Python that holds the GIL for its whole run (the planners in `commands/`, drawing a
  chart). It runs in a process pool (spawned: forking a process with Temporal's and chdb's threads is
  not safe), so the event loop keeps its core while a large plan is computed.

`HeavyWork.inline()` runs both in the caller's thread (the CLI, tests of planning alone).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def _ready() -> bool:
    return True


class HeavyWork:
    def __init__(self, *, threads: int = 4, processes: int = 1, inline: bool = False) -> None:
        self._threads: Executor | None = None if inline else ThreadPoolExecutor(threads, "shepherd-heavy")
        self._processes: ProcessPoolExecutor | None = None
        if not inline and processes > 0:
            self._processes = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
            self._processes.submit(_ready)  # start the worker now, not on the first plan

    @classmethod
    def inline(cls) -> HeavyWork:
        return cls(inline=True)

    async def blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the heavy-work threads (in the caller's thread when inline)."""
        if self._threads is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(fn, *args, **kwargs))

    def compute(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in the worker process, waited for here (call it from a thread, never the loop).
        `fn` and its arguments must pickle: module-level functions of plain data."""
        if self._processes is None:
            return fn(*args, **kwargs)
        return self._processes.submit(fn, *args, **kwargs).result()

    async def compute_async(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._processes is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._processes, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)


def run_inline(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The planners' default `compute`: in the caller's thread."""
    return fn(*args, **kwargs)
