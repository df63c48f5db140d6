"""bot/cpu.py: the pure planners run in a worker process, charts in another, queries on their own threads."""

from __future__ import annotations

import asyncio
import os
import threading

from bot.cpu import HeavyWork


def where() -> tuple[int, str]:
    return os.getpid(), threading.current_thread().name


def test_compute_draw_and_blocking_run_away_from_the_caller_and_inline_runs_here() -> None:
    heavy = HeavyWork(threads=1)
    try:
        planner_pid, _ = heavy.compute(where)
        drawing_pid, _ = asyncio.run(heavy.draw(where))
        _, thread = asyncio.run(heavy.blocking(where))
        assert len({os.getpid(), planner_pid, drawing_pid}) == 3
        assert thread.startswith("shepherd-heavy")
    finally:
        heavy.close()
    inline = HeavyWork.inline()
    assert inline.compute(where) == where() and asyncio.run(inline.blocking(where)) == where()
