"""Heavy work kept off the serve process's event loop, and off the executor its acks use.

Two kinds, two places:
- `blocking`: queries and the code around them (planning's reads, a verification's counts). psycopg and
  chdb release the GIL while the server works, so threads suit them; they get a bounded pool of their
  own, so a `/purge plan all` and a `/verify all` at once never take the default executor's threads
  that each ack's replay guard (bot/slack/replay.py) waits for.
- `compute`: pure Python that holds the GIL for its whole run (the planners in `commands/`, drawing a
  chart). It runs in a process pool (spawned: forking a process with Temporal's and chdb's threads is
  not safe), so the event loop keeps its core while a large plan is computed. Charts (`draw`) have a
  worker process of their own: a burst of plans' charts must not queue a `/purge plan all` behind it.

`HeavyWork.inline()` runs both in the caller's thread (the CLI, tests of planning alone).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _ready() -> bool:
    return True


class HeavyWork:
    def __init__(self, *, threads: int = 4, processes: int = 1, inline: bool = False) -> None:
        self._threads: Executor | None = None if inline else ThreadPoolExecutor(threads, "shepherd-heavy")
        self._processes = None if inline else _spawned(processes)
        self._drawing = None if inline else _spawned(1)

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

    async def draw(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A chart: `fn(*args, **kwargs)` in the drawing process, awaited."""
        if self._drawing is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._drawing, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        for pool in (self._threads, self._processes, self._drawing):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def _spawned(processes: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(_ready)  # start the worker now, not on the first plan
    return pool


def run_inline(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The planners' default `compute`: in the caller's thread."""
    return fn(*args, **kwargs)
