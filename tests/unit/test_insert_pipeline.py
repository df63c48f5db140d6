"""The insert pipeline behind a window's reads: order, bounded read-ahead, progress never ahead of what
was written, nothing written after a failure or an early exit."""

from __future__ import annotations

import threading
import time

import pytest

from bot.backfill.insert_pipeline import InsertPipeline


class Sink:
    """A slow ClickHouse stand-in recording what it wrote and how many batches waited at most."""

    def __init__(self, fail_on: int | None = None, delay: float = 0.005) -> None:
        self.written: list[int] = []
        self.fail_on = fail_on
        self.delay = delay
        self.lock = threading.Lock()

    def insert(self, n: int) -> int:
        time.sleep(self.delay)
        if n == self.fail_on:
            raise RuntimeError(f"insert {n} refused")
        with self.lock:
            self.written.append(n)
        return n


def test_inserts_run_in_order_and_callbacks_follow_what_is_written() -> None:
    sink, seen, marks = Sink(), list[int](), list[list[int]]()
    with InsertPipeline(3) as pipe:
        for n in range(10):
            pipe.submit(lambda n=n: sink.insert(n), lambda v: seen.append(v))  # type: ignore[misc]
            assert len(seen) >= n + 1 - 3  # the reader is never more than 3 batches ahead
            if n % 4 == 3:
                pipe.mark(lambda _: marks.append(list(sink.written)))
    assert sink.written == list(range(10)) and seen == list(range(10))
    # a mark runs once everything before it is written (and nothing is reported before it is)
    assert marks == [list(range(4)), list(range(8))]


def test_reads_go_on_while_inserts_run() -> None:
    sink = Sink(delay=0.05)
    with InsertPipeline(3) as pipe:
        began = time.monotonic()
        for n in range(3):
            pipe.submit(lambda n=n: sink.insert(n))  # type: ignore[misc]
        queued_in = time.monotonic() - began
    assert queued_in < 0.05 and sink.written == [0, 1, 2]


def test_after_a_failed_insert_nothing_later_is_written() -> None:
    sink, seen = Sink(fail_on=2, delay=0.01), list[int]()
    with pytest.raises(RuntimeError, match="insert 2 refused"), InsertPipeline(4) as pipe:
        for n in range(6):
            pipe.submit(lambda n=n: sink.insert(n), seen.append)  # type: ignore[misc]
    assert sink.written == [0, 1] and seen == [0, 1]


def test_leaving_on_an_error_cancels_queued_inserts_and_waits_for_the_running_one() -> None:
    sink = Sink(delay=0.05)
    with pytest.raises(KeyboardInterrupt), InsertPipeline(4) as pipe:
        for n in range(4):
            pipe.submit(lambda n=n: sink.insert(n))  # type: ignore[misc]
        raise KeyboardInterrupt  # e.g. the worker stopping mid-window
    written = list(sink.written)
    assert written in ([0], [0, 1])  # the one running finished; the queued never started
    time.sleep(0.2)
    assert sink.written == written
