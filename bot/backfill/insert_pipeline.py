"""Inserts behind the read: one thread runs them one at a time, in order, while the caller reads on.

At most `ahead` submitted inserts wait or run, so memory stays at `ahead + 1` batches whatever the
window's size. Each entry's callback runs in the caller's thread once it and everything before it
has finished (`mark` adds a callback with no insert: "everything before me is written"), so progress
reported from a callback is never ahead of what ClickHouse holds. After a failure nothing later
runs; leaving the block with an error cancels what has not started and waits for the running one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any

Then = Callable[[Any], None]


class _Skipped(Exception):
    """An entry not run because one before it failed."""


class InsertPipeline:
    def __init__(self, ahead: int, shield: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self.ahead = max(1, ahead)
        self.shield = shield  # keeps a cancellation out of the wait for an in-flight insert
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ch-insert")
        self._queue: deque[tuple[Future[Any] | None, Then | None]] = deque()
        self._pending = 0  # submitted inserts not yet settled
        self._failed = False

    def submit(self, fn: Callable[[], Any], then: Then | None = None) -> None:
        """Run `fn` after everything submitted before it; `then(its result)` once it has."""
        while self._pending >= self.ahead:
            self._settle_one()
        self._queue.append((self._pool.submit(self._guarded, fn), then))
        self._pending += 1
        self._settle_ready()

    def mark(self, then: Then) -> None:
        """Call `then(None)` once everything submitted so far has finished."""
        self._queue.append((None, then))
        self._settle_ready()

    def drain(self) -> None:
        while self._queue:
            self._settle_one()

    def _guarded(self, fn: Callable[[], Any]) -> Any:
        if self._failed:
            raise _Skipped
        try:
            return fn()
        except BaseException:
            self._failed = True
            raise

    def _settle_one(self) -> None:
        future, then = self._queue.popleft()
        if future is not None:
            self._pending -= 1
            value = future.result()
        else:
            value = None
        if then is not None:
            then(value)

    def _settle_ready(self) -> None:
        while self._queue and (self._queue[0][0] is None or self._queue[0][0].done()):
            self._settle_one()

    def __enter__(self) -> InsertPipeline:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if et is None:
                self.drain()
        finally:
            self._failed = self._failed or et is not None or bool(self._queue)
            for future, _ in self._queue:  # failed or leaving early: nothing more reaches ClickHouse
                if future is not None:
                    future.cancel()
            with self.shield():
                self._pool.shutdown(wait=True)
